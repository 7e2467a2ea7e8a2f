// Flag and environment parsing for `tokend serve`.
#include "server/config.hpp"

#include "storage/postgres_store.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

namespace tokend::server {
namespace {

std::size_t parse_count(const std::string& flag, const std::string& text, std::size_t min, std::size_t max) {
  std::size_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < min || value > max) {
    throw config_error("invalid value for " + flag + ": '" + text + "' (expected an integer from " +
                       std::to_string(min) + " to " + std::to_string(max) + ")");
  }
  return value;
}

bool parse_bool(const std::string& flag, const std::string& text) {
  if (text == "true" || text == "1" || text == "on" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "off" || text == "no") return false;
  throw config_error("invalid value for " + flag + ": '" + text + "' (expected true or false)");
}

// "250ms", "10s", or a bare number of seconds.
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text) {
  std::string digits = text;
  std::size_t scale = 1000;
  if (digits.size() > 2 && digits.ends_with("ms")) {
    digits.resize(digits.size() - 2);
    scale = 1;
  } else if (digits.size() > 1 && digits.ends_with("s")) {
    digits.resize(digits.size() - 1);
  }
  try {
    return std::chrono::milliseconds(parse_count(flag, digits, 1, 86'400'000) * scale);
  } catch (const config_error&) {
    throw config_error("invalid value for " + flag + ": '" + text +
                       "' (expected a duration such as 10s or 500ms)");
  }
}

struct flag_spec {
  const char* name;
  const char* env;
  std::function<void(config&, const std::string& flag, const std::string& value)> apply;
  bool is_switch = false;  // may appear without a value
};

const std::vector<flag_spec>& flag_specs() {
  static const std::vector<flag_spec> specs = {
      {"--listen", "TOKEND_LISTEN", [](config& c, auto& f, auto& v) { c.listen = parse_endpoint(f, v); }},
      {"--admin-listen", "TOKEND_ADMIN_LISTEN",
       [](config& c, auto& f, auto& v) { c.admin_listen = parse_endpoint(f, v); }},
      {"--data-dir", "TOKEND_DATA_DIR",
       [](config& c, auto& f, auto& v) {
         if (v.empty()) throw config_error("invalid value for " + f + ": must not be empty");
         c.data_dir = v;
       }},
      {"--store", "TOKEND_STORE",
       [](config& c, auto& f, auto& v) {
         if (v == "rocksdb")
           c.store = store_kind::rocksdb;
         else if (v == "postgres")
           c.store = store_kind::postgres;
         else
           throw config_error("invalid value for " + f + ": '" + v + "' (expected rocksdb or postgres)");
       }},
      {"--postgres-url", "TOKEND_POSTGRES_URL", [](config& c, auto&, auto& v) { c.postgres_url = v; }},
      {"--postgres-schema", "TOKEND_POSTGRES_SCHEMA",
       [](config& c, auto& f, auto& v) {
         const std::string problem = storage::postgres_schema_problem(v);
         if (!problem.empty()) throw config_error("invalid value for " + f + ": " + problem);
         c.postgres_schema = v;
       }},
      {"--postgres-connections", "TOKEND_POSTGRES_CONNECTIONS",
       [](config& c, auto& f, auto& v) { c.postgres_connections = parse_count(f, v, 1, 64); }},
      {"--revocation-poll", "TOKEND_REVOCATION_POLL",
       [](config& c, auto& f, auto& v) { c.revocation_poll = parse_duration(f, v); }},
      {"--threads", "TOKEND_THREADS",
       [](config& c, auto& f, auto& v) { c.threads = parse_count(f, v, 1, 1024); }},
      {"--cache-capacity", "TOKEND_CACHE_CAPACITY",
       [](config& c, auto& f, auto& v) { c.cache_capacity = parse_count(f, v, 1, 1'000'000'000); }},
      {"--list-cache-tokens", "TOKEND_LIST_CACHE_TOKENS",
       [](config& c, auto& f, auto& v) { c.list_cache_tokens = parse_count(f, v, 0, 1'000'000'000); }},
      {"--max-body-bytes", "TOKEND_MAX_BODY_BYTES",
       [](config& c, auto& f, auto& v) { c.max_body_bytes = parse_count(f, v, 64, 64 << 20); }},
      {"--max-header-bytes", "TOKEND_MAX_HEADER_BYTES",
       [](config& c, auto& f, auto& v) { c.max_header_bytes = parse_count(f, v, 512, 1 << 20); }},
      {"--sync", "TOKEND_SYNC", [](config& c, auto& f, auto& v) { c.sync = parse_bool(f, v); }, true},
      {"--write-queue", "TOKEND_WRITE_QUEUE",
       [](config& c, auto& f, auto& v) { c.write_queue = parse_count(f, v, 1, 1 << 24); }},
      {"--max-connections", "TOKEND_MAX_CONNECTIONS",
       [](config& c, auto& f, auto& v) { c.max_connections = parse_count(f, v, 1, 1'000'000); }},
      {"--admin-max-connections", "TOKEND_ADMIN_MAX_CONNECTIONS",
       [](config& c, auto& f, auto& v) { c.admin_max_connections = parse_count(f, v, 1, 10'000); }},
      // At least two of the largest list answers (1000 tokens of the longest descriptions, ~1.8 MB).
      {"--max-response-bytes-in-flight", "TOKEND_MAX_RESPONSE_BYTES_IN_FLIGHT",
       [](config& c, auto& f, auto& v) {
         c.max_response_bytes_in_flight = parse_count(f, v, std::size_t{4} << 20, std::size_t{1} << 40);
       }},
      {"--idle-timeout", "TOKEND_IDLE_TIMEOUT",
       [](config& c, auto& f, auto& v) { c.idle_timeout = parse_duration(f, v); }},
      {"--request-timeout", "TOKEND_REQUEST_TIMEOUT",
       [](config& c, auto& f, auto& v) { c.request_timeout = parse_duration(f, v); }},
      {"--drain-timeout", "TOKEND_DRAIN_TIMEOUT",
       [](config& c, auto& f, auto& v) { c.drain_timeout = parse_duration(f, v); }},
      {"--drain-idle-grace", "TOKEND_DRAIN_IDLE_GRACE",
       [](config& c, auto& f, auto& v) {
         c.drain_idle_grace =
             (v == "0" || v == "0s" || v == "0ms") ? std::chrono::milliseconds(0) : parse_duration(f, v);
       }},
      {"--log-level", "TOKEND_LOG_LEVEL",
       [](config& c, auto& f, auto& v) {
         const auto lvl = log::parse_level(v);
         if (!lvl)
           throw config_error("invalid value for " + f + ": '" + v +
                              "' (expected debug, info, warn or error)");
         c.log_level = *lvl;
       }},
      {"--access-log", "TOKEND_ACCESS_LOG",
       [](config& c, auto& f, auto& v) { c.access_log = parse_bool(f, v); }, true},
      {"--test-fault-file", "TOKEND_TEST_FAULT_FILE",
       [](config& c, auto&, auto& v) { c.test_fault_file = v; }},
  };
  return specs;
}

}  // namespace

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
}

endpoint_spec parse_endpoint(const std::string& flag, const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw config_error("invalid value for " + flag + ": '" + text + "' (expected host:port)");
  }
  endpoint_spec ep;
  ep.host = text.substr(0, colon);
  if (ep.host.size() >= 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  boost::system::error_code ec;
  boost::asio::ip::make_address(ep.host, ec);
  if (ec) throw config_error("invalid value for " + flag + ": '" + text + "' (host must be an IP address)");
  ep.port = static_cast<std::uint16_t>(parse_count(flag, text.substr(colon + 1), 0, 65535));
  return ep;
}

config parse_config(const std::vector<std::string>& args, const env_lookup& env) {
  config c;
  for (const auto& spec : flag_specs()) {
    if (auto v = env(spec.env)) spec.apply(c, spec.env, *v);
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const auto eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const flag_spec* spec = nullptr;
    for (const auto& s : flag_specs()) {
      if (name == s.name) spec = &s;
    }
    if (name == "--no-sync" && eq == std::string::npos) {
      c.sync = false;
      continue;
    }
    if (name == "--no-access-log" && eq == std::string::npos) {
      c.access_log = false;
      continue;
    }
    if (!spec) throw config_error("unknown flag: " + name + " (see tokend --help)");
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (spec->is_switch) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw config_error("missing value for " + name);
    }
    spec->apply(c, name, value);
  }
  if (c.store == store_kind::postgres && c.postgres_url.empty()) {
    throw config_error("--store postgres needs --postgres-url (or TOKEND_POSTGRES_URL)");
  }
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.drain_idle_grace && *c.drain_idle_grace >= c.drain_timeout) {
    throw config_error("--drain-idle-grace (" + std::to_string(c.drain_idle_grace->count()) +
                       "ms) must be shorter than --drain-timeout (" +
                       std::to_string(c.drain_timeout.count()) + "ms)");
  }
  return c;
}

std::chrono::milliseconds drain_idle_grace(const config& c) noexcept {
  if (c.drain_idle_grace) return std::min(*c.drain_idle_grace, c.drain_timeout);
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(2), c.drain_timeout / 2);
}

std::string usage_text() {
  return R"(tokend - the Vida API v2 token service (POST/GET/DELETE /api/v2/tokens)

Usage:
  tokend [serve] [flags]    run the service (the default command)
  tokend keygen             print a new well-formed key
  tokend --help             show this help

Flags of serve (each also read from the environment variable shown; a flag wins):
  --listen HOST:PORT        API address              TOKEND_LISTEN            (0.0.0.0:8080)
  --admin-listen HOST:PORT  /healthz /readyz /metrics TOKEND_ADMIN_LISTEN     (0.0.0.0:9090)
  --data-dir PATH           RocksDB data directory   TOKEND_DATA_DIR          (./data)
  --store KIND              rocksdb (this process's own data) or postgres (shared by many)
                                                     TOKEND_STORE             (rocksdb)
  --postgres-url URL        libpq connection string for --store postgres
                                                     TOKEND_POSTGRES_URL      (none)
  --postgres-schema NAME    schema of tokend's tables (several deployments on one database)
                                                     TOKEND_POSTGRES_SCHEMA   (public)
  --postgres-connections N  pool size (plus one LISTEN connection)
                                                     TOKEND_POSTGRES_CONNECTIONS (4)
  --revocation-poll D       how often a postgres store polls for deletes made elsewhere (the bound
                            when a NOTIFY is missed) TOKEND_REVOCATION_POLL   (1s)
  --threads N               io threads               TOKEND_THREADS           (number of cores)
  --cache-capacity N        cached keys              TOKEND_CACHE_CAPACITY    (1000000)
  --list-cache-tokens N     tokens of cached lists   TOKEND_LIST_CACHE_TOKENS (100000; 0 = off)
  --max-body-bytes N        request body limit (413) TOKEND_MAX_BODY_BYTES    (16384)
  --max-header-bytes N      header limit (431)       TOKEND_MAX_HEADER_BYTES  (8192)
  --sync[=true|false]       fsync each write batch   TOKEND_SYNC              (true); --no-sync = false
  --write-queue N           pending writes before 503 TOKEND_WRITE_QUEUE      (65536)
  --max-connections N       open API connections; more are closed at once (lowered at start to
                            fit the file-descriptor limit, which is raised to its hard limit)
                                                     TOKEND_MAX_CONNECTIONS   (10000)
  --admin-max-connections N open admin connections; more are closed at once
                                                     TOKEND_ADMIN_MAX_CONNECTIONS (32)
  --max-response-bytes-in-flight N
                            bytes of list answers built and not yet written; past it a list is
                            answered 503 with Retry-After
                                                     TOKEND_MAX_RESPONSE_BYTES_IN_FLIGHT (67108864)
  --idle-timeout D          keep-alive idle limit    TOKEND_IDLE_TIMEOUT      (60s)
  --request-timeout D       read/write of a request  TOKEND_REQUEST_TIMEOUT   (10s)
  --drain-timeout D         graceful stop deadline   TOKEND_DRAIN_TIMEOUT     (10s)
  --drain-idle-grace D      while draining, how long an idle keep-alive connection waits for a last
                            request (answered with Connection: close); below --drain-timeout, 0 = none
                                                     TOKEND_DRAIN_IDLE_GRACE  (2s, at most half of it)
  --log-level LEVEL         debug, info, warn, error TOKEND_LOG_LEVEL         (info)
  --access-log[=true|false] log each API request   TOKEND_ACCESS_LOG        (false); --no-access-log = false
  --test-fault-file PATH    testing only: a file whose content ("stall", "fail") injects store
                            write faults             TOKEND_TEST_FAULT_FILE   (off)
Durations: 10s, 500ms, or a number of seconds.

Bootstrap (environment only):
  TOKEND_BOOTSTRAP_TOKEN    a key to store at start if absent (description "bootstrap")
  TOKEND_BOOTSTRAP_USER_ID  its owner (default 1)
  With neither and an empty store, tokend creates a key for user 1 and writes it to
  <data-dir>/admin-token (mode 0600; a symbolic link there is replaced, never followed).
  The data directory is created 0700 (an existing one open to others is tightened, with a
  warning) and every file tokend or RocksDB writes is 0600 (umask 077).

Logs: JSON lines on stdout. Each API response carries X-Request-Id: the request's own header when
it is 1-128 characters of [A-Za-z0-9._-] holding no run of 32 or more hex digits (separators
allowed between them: it may be a key), a new id otherwise; the log lines of a
request name it. An access line has method, path (never the query string), status,
duration_seconds, request_id and bytes; no key is ever logged.

Signals: SIGTERM/SIGINT drain: readiness fails and the API listener closes at once; in-flight
requests finish, and each kept-alive connection's next request (within the idle grace) is answered
with Connection: close; then exit 0.
)";
}

}  // namespace tokend::server
