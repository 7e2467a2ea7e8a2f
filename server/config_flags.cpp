// The flag table and the value parsers its entries use; see config_flags.hpp.
#include "server/config_flags.hpp"

#include "core/duration.hpp"
#include "storage/postgres_store.hpp"

#include <boost/asio/ip/address.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string_view>

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

// A duration of core::parse_duration's syntax; 0 (in any unit) only when `zero_allowed`.
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text,
                                         bool zero_allowed = false) {
  const auto d = core::parse_duration(text);
  if (!d || (d->count() == 0 && !zero_allowed)) {
    throw config_error("invalid value for " + flag + ": '" + text +
                       "' (expected a duration such as 500ms, 10s, 5m, 2h or 30d" +
                       (zero_allowed ? ", or 0" : "") + ")");
  }
  return *d;
}

using value = const std::string&;

// The appliers the table's rows share: each parses a value into one member of the config.
template <auto member, std::size_t min, std::size_t max>
void count(config& c, value f, value v) {
  c.*member = parse_count(f, v, min, max);
}
template <auto member>
void duration(config& c, value f, value v) {
  c.*member = parse_duration(f, v);
}
template <auto member>
void duration_or_zero(config& c, value f, value v) {
  c.*member = parse_duration(f, v, true);
}
template <auto member>
void boolean(config& c, value f, value v) {
  c.*member = parse_bool(f, v);
}
template <auto member>
void endpoint(config& c, value f, value v) {
  c.*member = parse_endpoint(f, v);
}
template <auto member>
void text(config& c, value, value v) {
  c.*member = v;
}

void data_dir(config& c, value f, value v) {
  if (v.empty()) throw config_error("invalid value for " + f + ": must not be empty");
  c.data_dir = v;
}

void store(config& c, value f, value v) {
  if (v == "rocksdb")
    c.store = store_kind::rocksdb;
  else if (v == "postgres")
    c.store = store_kind::postgres;
  else
    throw config_error("invalid value for " + f + ": '" + v + "' (expected rocksdb or postgres)");
}

void postgres_schema(config& c, value f, value v) {
  const std::string problem = storage::postgres_schema_problem(v);
  if (!problem.empty()) throw config_error("invalid value for " + f + ": " + problem);
  c.postgres_schema = v;
}

void drain_idle_grace(config& c, value f, value v) { c.drain_idle_grace = parse_duration(f, v, true); }

// A key lifetime: 0 for none, else a duration of whole seconds.
template <auto member>
void lifetime(config& c, value f, value v) {
  const auto d = parse_duration(f, v, true);
  if (d.count() % 1000 != 0) throw config_error("invalid value for " + f + ": '" + v + "' (whole seconds)");
  c.*member = std::chrono::duration_cast<std::chrono::seconds>(d);
}

// `N/DURATION` (a limit of N requests per window, the window whole seconds up to a day), or `0`
// or `off` for none. Sets the limit and window, never the burst (a flag of its own).
void rate_limit(config& c, value f, value v) {
  if (v == "0" || v == "off") {
    c.rate_limit.limit = 0;
    c.rate_limit.window_seconds = 1;
    return;
  }
  const auto slash = v.find('/');
  if (slash == std::string::npos) {
    throw config_error("invalid value for " + f + ": '" + v +
                       "' (expected N/DURATION such as 100/1s or 6000/1m, or off)");
  }
  const auto n = parse_count(f, v.substr(0, slash), 1, core::max_rate_limit);
  const auto window = core::parse_duration(std::string_view(v).substr(slash + 1));
  if (!window || window->count() % 1000 != 0 || window->count() < 1000 ||
      window->count() > std::int64_t{core::max_rate_window_seconds} * 1000) {
    throw config_error("invalid value for " + f + ": '" + v +
                       "' (the window must be a duration of whole seconds from 1s to 1d)");
  }
  c.rate_limit.limit = static_cast<std::uint32_t>(n);
  c.rate_limit.window_seconds = static_cast<std::uint32_t>(window->count() / 1000);
}

void rate_limit_burst(config& c, value f, value v) {
  c.rate_limit.burst = static_cast<std::uint32_t>(parse_count(f, v, 0, core::max_rate_limit));
}

void verify_rate_limited_status(config& c, value f, value v) {
  if (v != "429" && v != "403" && v != "401")
    throw config_error("invalid value for " + f + ": '" + v + "' (expected 429, 403 or 401)");
  c.verify_rate_limited_status = static_cast<unsigned>(parse_count(f, v, 401, 429));
}

void log_level(config& c, value f, value v) {
  const auto lvl = log::parse_level(v);
  if (!lvl)
    throw config_error("invalid value for " + f + ": '" + v + "' (expected debug, info, warn or error)");
  c.log_level = *lvl;
}

// At least two of the largest list answers (1000 tokens of the longest descriptions, ~1.8 MB).
constexpr std::size_t min_response_bytes = std::size_t{4} << 20;

constexpr std::array<flag_spec, 35> table = {{
    {"--listen", "TOKEND_LISTEN", "HOST:PORT", "0.0.0.0:8080", "", "", endpoint<&config::listen>,
     "API address"},
    {"--admin-listen", "TOKEND_ADMIN_LISTEN", "HOST:PORT", "0.0.0.0:9090", "", "",
     endpoint<&config::admin_listen>, "`/healthz`, `/readyz`, `/metrics`"},
    {"--data-dir", "TOKEND_DATA_DIR", "PATH", "./data", "", "", data_dir,
     "RocksDB directory (and `admin-token`); created 0700, an existing one open to others "
     "tightened with a warning"},
    {"--store", "TOKEND_STORE", "KIND", "rocksdb", "", "", store,
     "`rocksdb` (this process's own data) or `postgres` (shared by many processes)"},
    {"--postgres-url", "TOKEND_POSTGRES_URL", "URL", "", "none", "", text<&config::postgres_url>,
     "libpq connection string or `postgresql://` URL; required with `--store postgres`; never logged"},
    {"--postgres-schema", "TOKEND_POSTGRES_SCHEMA", "NAME", "public", "", "", postgres_schema,
     "schema of tokend's tables (several deployments on one database): 1 to 48 printable ASCII "
     "bytes, not starting with `pg_`, used exactly as given (quoted: capitals and reserved words "
     "included)"},
    {"--postgres-connections", "TOKEND_POSTGRES_CONNECTIONS", "N", "4", "", "",
     count<&config::postgres_connections, 1, 64>,
     "command connections per process (plus one for LISTEN and polling)"},
    {"--revocation-poll", "TOKEND_REVOCATION_POLL", "D", "1s", "", "", duration<&config::revocation_poll>,
     "postgres: how often each process polls for deletes made elsewhere (the bound when a NOTIFY "
     "is lost)"},
    {"--threads", "TOKEND_THREADS", "N", "", "number of cores", "", count<&config::threads, 1, 1024>,
     "io threads, one io_context each"},
    {"--cache-capacity", "TOKEND_CACHE_CAPACITY", "N", "1000000", "", "",
     count<&config::cache_capacity, 1, 1'000'000'000>, "cached keys (positive and negative)"},
    {"--list-cache-tokens", "TOKEND_LIST_CACHE_TOKENS", "N", "100000", "", "",
     count<&config::list_cache_tokens, 0, 1'000'000'000>,
     "tokens of users' complete lists kept in memory (0: off)"},
    {"--max-tokens-per-user", "TOKEND_MAX_TOKENS_PER_USER", "N", "10000", "", "",
     count<&config::max_tokens_per_user, 0, 1'000'000'000>,
     "tokens one user may hold (0: no bound); a create past it gets 409. An operator key may give "
     "a user its own bound (PUT /api/v2/tokens/quota)"},
    {"--max-body-bytes", "TOKEND_MAX_BODY_BYTES", "N", "16384", "", "",
     count<&config::max_body_bytes, 64, std::size_t{64} << 20>, "larger bodies get 413"},
    {"--max-header-bytes", "TOKEND_MAX_HEADER_BYTES", "N", "8192", "", "",
     count<&config::max_header_bytes, 512, std::size_t{1} << 20>,
     "larger header blocks get 431 (counted over the whole block, however it arrives)"},
    {"--sync", "TOKEND_SYNC", "", "true", "", "--no-sync", boolean<&config::sync>,
     "fsync every write batch before answering"},
    {"--write-queue", "TOKEND_WRITE_QUEUE", "N", "65536", "", "",
     count<&config::write_queue, 1, std::size_t{1} << 24>, "pending writes before 503"},
    {"--max-connections", "TOKEND_MAX_CONNECTIONS", "N", "10000", "", "",
     count<&config::max_connections, 1, 1'000'000>,
     "open API connections; beyond it a new connection is closed at once, unanswered (never a "
     "5xx), so a load balancer retries elsewhere. Lowered at start to fit the file-descriptor "
     "limit, which is raised to its hard limit (see docs/OPERATIONS.md, resource limits)"},
    {"--admin-max-connections", "TOKEND_ADMIN_MAX_CONNECTIONS", "N", "32", "", "",
     count<&config::admin_max_connections, 1, 10'000>,
     "open admin connections (1 to 10000); beyond it a new one is closed at once, so probes never "
     "compete with API clients"},
    {"--max-response-bytes-in-flight", "TOKEND_MAX_RESPONSE_BYTES_IN_FLIGHT", "N", "67108864", "", "",
     count<&config::max_response_bytes_in_flight, min_response_bytes, std::size_t{1} << 40>,
     "bytes of list answers built and not yet written, all connections together (at least 4 MiB; "
     "the default is 64 MiB); a list past it is answered 503 with `Retry-After: 1`"},
    {"--idle-timeout", "TOKEND_IDLE_TIMEOUT", "D", "60s", "", "", duration<&config::idle_timeout>,
     "keep-alive connection idle limit"},
    {"--request-timeout", "TOKEND_REQUEST_TIMEOUT", "D", "10s", "", "", duration<&config::request_timeout>,
     "to read a whole request / write a response (both deadlines are checked every quarter of the "
     "shorter timeout, at most every 250 ms; the handler's own time does not count)"},
    {"--drain-timeout", "TOKEND_DRAIN_TIMEOUT", "D", "10s", "", "", duration<&config::drain_timeout>,
     "graceful-stop deadline for in-flight requests"},
    {"--drain-idle-grace", "TOKEND_DRAIN_IDLE_GRACE", "D", "", "2s, at most half of `--drain-timeout`", "",
     drain_idle_grace,
     "while draining, how long an idle keep-alive connection waits for a last request (answered "
     "with `Connection: close`); must be below `--drain-timeout`; 0: idle connections close at once"},
    {"--expired-retention", "TOKEND_EXPIRED_RETENTION", "D", "30d", "", "",
     duration_or_zero<&config::expired_retention>,
     "how long an expired token stays (listed, refused) before the sweep removes it; 0: at the first "
     "sweep after its expiry"},
    {"--expired-sweep-interval", "TOKEND_EXPIRED_SWEEP_INTERVAL", "D", "60s", "", "",
     duration<&config::expired_sweep_interval>,
     "how often expired tokens past `--expired-retention` are removed, in store writes of at most 1000 "
     "tokens each"},
    {"--last-used-interval", "TOKEND_LAST_USED_INTERVAL", "D", "60s", "", "",
     duration_or_zero<&config::last_used_interval>,
     "how often the keys' uses (marked in memory, at most one per key per minute) are written to the "
     "store in one batch, for lists' `lastUsedAt`; 0: last use is not recorded"},
    {"--rate-limit-sync-interval", "TOKEND_RATE_LIMIT_SYNC_INTERVAL", "D", "200ms", "", "",
     duration_or_zero<&config::rate_limit_sync_interval>,
     "with `--store postgres`, how often each instance sends the others the requests it admitted "
     "under rate limits (one NOTIFY round trip), which bounds how far several instances together "
     "can exceed a limit; 0: never, each instance limits on its own"},
    {"--access-log", "TOKEND_ACCESS_LOG", "", "false", "", "--no-access-log", boolean<&config::access_log>,
     "one JSON line per API request, never with a key (see docs/OPERATIONS.md, access log)"},
    {"--token-ttl", "TOKEND_TOKEN_TTL", "D", "0", "", "", lifetime<&config::token_ttl>,
     "lifetime of a key created or rolled without `expiresAt`/`expiresIn` (0: none, keys never expire "
     "unless asked; with a `--token-max-ttl`, that maximum)"},
    {"--token-max-ttl", "TOKEND_TOKEN_MAX_TTL", "D", "0", "", "", lifetime<&config::token_max_ttl>,
     "longest lifetime a key may be given (0: no maximum); a request past it gets 400 naming it; "
     "at least `--token-ttl`"},
    {"--rate-limit", "TOKEND_RATE_LIMIT", "N/D", "off", "", "", rate_limit,
     "rate limit of the keys without one of their own: N requests per window D (whole seconds, 1s to "
     "1d), e.g. `100/1s` or `6000/1m`; `0` or `off`: none. A key's own limit (`rateLimit`) wins, "
     "and `{\"limit\":0}` exempts a key"},
    {"--rate-limit-burst", "TOKEND_RATE_LIMIT_BURST", "N", "0", "", "", rate_limit_burst,
     "requests the default limit's bucket holds, taken at once by a key idle long enough (0: N of "
     "`--rate-limit`)"},
    {"--verify-rate-limited-status", "TOKEND_VERIFY_RATE_LIMITED_STATUS", "STATUS", "429", "", "",
     verify_rate_limited_status,
     "`/verify`'s answer to a key over its rate limit: `429`, or `403` behind nginx `auth_request` "
     "and ingress-nginx (which turn any other refusal into a 500), or `401`"},
    {"--log-level", "TOKEND_LOG_LEVEL", "LEVEL", "info", "", "", log_level,
     "`debug`, `info`, `warn` or `error`: lines below it are dropped"},
    {"--test-fault-file", "TOKEND_TEST_FAULT_FILE", "PATH", "", "off", "", text<&config::test_fault_file>,
     "testing only: a file whose content (`stall`, `fail`) injects store write faults"},
}};

}  // namespace

std::span<const flag_spec> flag_table() { return table; }

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

}  // namespace tokend::server
