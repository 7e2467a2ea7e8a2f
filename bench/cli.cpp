// tokend-bench's command line: the flags, their checks and --help; see cli.hpp.
#include "bench/cli.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokend::bench {

const std::string_view help_text =
    R"(usage: tokend-bench [flags]     (each flag as --flag value or --flag=value)

  --url URL            target, http only; host an IP address or a host name, resolved once at
                       start (localhost, a cluster Service name...) (default
                       http://127.0.0.1:8080; any path is ignored: see --path)
  --token KEY          the API key (needed by create, list and verify); sent as ?token=KEY,
                       and as Authorization: Bearer KEY by verify
  --token-file PATH    read the key from the first line of PATH instead
  --create-token KEY   the key for creates only (default: --token); with a key of another
                       user, creates in a mixed load do not lengthen the lists being measured
  --scenario NAME      create | list | authfail | verify | verify-fail | mixed (default list)
                         create:      POST /api/v2/tokens {"type":"admin","description":"bench"}
                         list:        GET  /api/v2/tokens
                         authfail:    GET  /api/v2/tokens with a well-formed but unknown key
                         verify:      GET  /verify, Authorization: Bearer KEY (a gateway's
                                      check; expects 200)
                         verify-fail: GET  /verify with a well-formed but unknown key in
                                      Authorization (expects 401)
  --mix SHARES         shares for mixed, e.g. create=1,list=9 (default); authfail=N,
                       verify=N and verify-fail=N too
  --path TARGET        request target instead of the scenario's (/api/v2/tokens or /verify),
                       query allowed, e.g. /verify/api/items?page=2; create, list and authfail
                       still append their key as token=
  --method NAME        HTTP method of every request instead of the scenario's, e.g. POST
  --body TEXT          body of every request instead of the scenario's (create's JSON, or
                       none), sent as application/json; e.g. authfail as a POST with a body
  --header 'N: V'      an extra header on every request; repeat for more. Host and
                       Authorization replace the bench's own; e.g. --header
                       'X-Original-URI: /api/items?token=KEY' sends a key as nginx does
  --connections N      keep-alive connections (default 64)
  --threads N          io threads (default 2)
  --duration D         measured time, e.g. 10s, 500ms, 2m (default 10s)
  --requests N         stop after N requests instead (with --duration too: whichever first);
                       requests lost to transport errors count towards N
  --warmup D           load before measuring, not counted (default 0s)
  --pipeline N         requests in flight per connection (default 1)
  --rate R             total requests/s, open loop: each connection sends on a fixed schedule
                       and latency counts from the scheduled time (wrk2's coordinated-omission
                       correction); without --rate the load is closed loop
  --timeout D          per request and per connect (default 5s)
  --json               print the report as one JSON object
  --report FILE.html   also write a self-contained HTML page: throughput over time, the latency
                       percentile spectrum, errors and these parameters (never the key)
  --help               this text

Exit status: 0 when the load ran (even with errors), 1 when the target could not be reached at
all, 2 for bad usage.
)";

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::uint64_t parse_count(std::string_view flag, std::string_view v, std::uint64_t max) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || end != v.data() + v.size() || n == 0 || n > max) {
    throw usage_error("--" + std::string(flag) + " wants a whole number from 1 to " + std::to_string(max) +
                      ", not '" + std::string(v) + "'");
  }
  return n;
}

double parse_number(std::string_view v, std::size_t& used) {
  double d = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc{} || !std::isfinite(d)) return -1;
  used = static_cast<std::size_t>(end - v.data());
  return d;
}

// "10s", "500ms", "250us", "2m", "1h", "1.5s"; a bare number is seconds.
std::chrono::nanoseconds parse_duration(std::string_view flag, std::string_view v, bool allow_zero) {
  std::size_t used = 0;
  const double n = parse_number(v, used);
  const std::string_view unit = v.substr(used);
  double scale = -1;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ns")
    scale = 1;
  else if (unit == "m")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  const double ns = n * scale;
  if (used == 0 || n < 0 || scale < 0 || (!allow_zero && ns < 1) || ns > 1e18) {
    throw usage_error("--" + std::string(flag) + " wants a duration such as 10s, 500ms or 2m, not '" +
                      std::string(v) + "'");
  }
  return std::chrono::nanoseconds{static_cast<std::int64_t>(ns)};
}

// A DNS name: labels of letters, digits, '-' and '_' (Kubernetes and others use both), 1 to 63
// characters each, 253 at most in all.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.back() == '.') host.remove_suffix(1);  // a fully qualified name
  while (!host.empty()) {
    const auto dot = host.find('.');
    const auto label = host.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
    if (host.empty()) return false;
  }
  return true;
}

// A character of an HTTP token (a method or a header field name).
bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// "Name: value": a header field name (an HTTP token) and a value without CR, LF or NUL.
void check_header_line(std::string_view line) {
  const auto colon = line.find(':');
  const auto name = line.substr(0, colon == std::string_view::npos ? 0 : colon);
  const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), is_token_char);
  if (!name_ok || line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    throw usage_error("--header wants 'Name: value' on one line, not '" + std::string(line) + "'");
  }
}

// http://HOST[:PORT][/anything]; HOST is an IPv4 address, [IPv6] or a host name.
void parse_url(options& o, std::string_view url) {
  const std::string_view scheme = "http://";
  if (url.size() < scheme.size() || lower(url.substr(0, scheme.size())) != scheme) {
    throw usage_error("--url must start with http:// (only plain HTTP is supported), not '" +
                      std::string(url) + "'");
  }
  std::string_view authority = url.substr(scheme.size());
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    throw usage_error("--url needs a host (an IP address or localhost): '" + std::string(url) + "'");
  }
  std::string_view host = authority;
  std::string_view port;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) throw usage_error("--url has an unclosed [IPv6] host");
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') throw usage_error("--url: unexpected text after ]");
      port = host.substr(close + 2);
    }
    host = host.substr(1, close - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(host), ec);
  if (!ec && (!address.is_v6() || authority.front() == '[')) {
    o.cfg.address = address.to_string();
  } else if (authority.front() != '[' && is_host_name(host)) {
    o.cfg.address = std::string(host);  // resolved once, before the run (resolve_target)
  } else {
    throw usage_error("--url host must be an IP address or a host name, not '" + std::string(host) + "'");
  }
  o.cfg.port = 80;
  if (!port.empty() || authority.back() == ':') {
    o.cfg.port = static_cast<std::uint16_t>(parse_count("url port", port, 65535));
  }
  o.cfg.host_header = std::string(authority);
  o.url = std::string(url);
}

// "create=1,list=9,authfail=2" -> weights by request kind.
std::array<unsigned, tokend::bench::request_kind_count> parse_mix(std::string_view v) {
  std::array<unsigned, tokend::bench::request_kind_count> mix{};
  std::array<bool, tokend::bench::request_kind_count> seen{};
  unsigned total = 0;
  while (!v.empty()) {
    const auto comma = v.find(',');
    const std::string_view item = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    const auto eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    std::size_t k = tokend::bench::request_kind_count;
    for (std::size_t i = 0; i < tokend::bench::request_kind_count; ++i) {
      if (name == tokend::bench::to_string(static_cast<request_kind>(i))) k = i;
    }
    if (eq == std::string_view::npos || k == tokend::bench::request_kind_count || seen[k]) {
      throw usage_error(
          "--mix wants shares such as create=1,list=9 (names create, list, authfail, verify, "
          "verify-fail, each once), not '" +
          std::string(item) + "'");
    }
    const std::string_view number = item.substr(eq + 1);
    unsigned w = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), w);
    if (ec != std::errc{} || end != number.data() + number.size() || w > 1'000'000) {
      throw usage_error("--mix share for " + std::string(name) + " must be a whole number up to 1000000");
    }
    seen[k] = true;
    mix[k] = w;
    total += w;
  }
  if (total == 0) throw usage_error("--mix needs at least one share above 0");
  return mix;
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) throw usage_error("--token-file: cannot read a line from " + path);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  const auto first = line.find_first_not_of(" \t");
  return first == std::string::npos ? std::string{} : line.substr(first);
}

}  // namespace

options parse_args(int argc, const char* const* argv) {
  options o;
  std::optional<std::string> token, token_file, mix;
  bool scenario_set = false, duration_set = false;
  const std::vector<std::string_view> valued = {
      "url",     "token",    "token-file", "create-token", "scenario", "mix",  "connections",
      "threads", "duration", "requests",   "warmup",       "pipeline", "rate", "timeout",
      "path",    "method",   "header",     "report",       "body"};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--" || arg.size() == 2) {
      throw usage_error("unexpected argument '" + std::string(arg) + "'");
    }
    arg.remove_prefix(2);
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name == "help" || name == "json") {
      if (value) throw usage_error("--" + std::string(name) + " takes no value");
      (name == "help" ? o.help : o.json) = true;
      continue;
    }
    if (std::find(valued.begin(), valued.end(), name) == valued.end()) {
      throw usage_error("unknown flag --" + std::string(name));
    }
    if (!value) {
      if (i + 1 >= argc) throw usage_error("--" + std::string(name) + " needs a value");
      value = argv[++i];
    }
    const std::string_view v = *value;
    if (name == "url") {
      parse_url(o, v);
    } else if (name == "token") {
      token = std::string(v);
    } else if (name == "token-file") {
      token_file = std::string(v);
    } else if (name == "create-token") {
      o.cfg.create_token = std::string(v);
    } else if (name == "scenario") {
      const std::vector<std::string_view> scenarios = {"create", "list",        "authfail",
                                                       "verify", "verify-fail", "mixed"};
      if (std::find(scenarios.begin(), scenarios.end(), v) == scenarios.end()) {
        throw usage_error("--scenario must be create, list, authfail, verify, verify-fail or mixed, not '" +
                          std::string(v) + "'");
      }
      o.scenario = std::string(v);
      scenario_set = true;
    } else if (name == "mix") {
      mix = std::string(v);
    } else if (name == "connections") {
      o.cfg.connections = parse_count(name, v, 100'000);
    } else if (name == "threads") {
      o.cfg.threads = parse_count(name, v, 256);
    } else if (name == "duration") {
      o.cfg.duration = parse_duration(name, v, false);
      duration_set = true;
    } else if (name == "requests") {
      o.cfg.requests = parse_count(name, v, UINT64_MAX / 2);
    } else if (name == "warmup") {
      o.cfg.warmup = parse_duration(name, v, true);
    } else if (name == "pipeline") {
      o.cfg.pipeline = parse_count(name, v, 1024);
    } else if (name == "rate") {
      std::size_t used = 0;
      const double r = parse_number(v, used);
      if (used != v.size() || !(r > 0) || r > 1e9) {
        throw usage_error("--rate wants requests per second above 0, not '" + std::string(v) + "'");
      }
      o.cfg.rate = r;
    } else if (name == "timeout") {
      o.cfg.timeout = parse_duration(name, v, false);
    } else if (name == "path") {
      const bool printable = std::all_of(v.begin(), v.end(), [](char c) { return c > ' ' && c != 0x7f; });
      if (v.empty() || (v.front() != '/' && v != "*") || !printable) {
        throw usage_error("--path wants a request target such as /verify or /verify/a?b=c, not '" +
                          std::string(v) + "'");
      }
      o.cfg.path = std::string(v);
    } else if (name == "method") {
      if (v.empty() || !std::all_of(v.begin(), v.end(), is_token_char)) {
        throw usage_error("--method wants a method name such as GET or POST, not '" + std::string(v) + "'");
      }
      o.cfg.method = std::string(v);
    } else if (name == "body") {
      o.cfg.body = std::string(v);
    } else if (name == "header") {
      check_header_line(v);
      o.cfg.headers.emplace_back(v);
    } else if (name == "report") {
      if (v.empty()) throw usage_error("--report wants a file name, e.g. report.html");
      o.report = std::string(v);
    }
  }
  if (o.help) return o;

  if (mix) {
    if (scenario_set && o.scenario != "mixed") throw usage_error("--mix goes with --scenario mixed");
    o.scenario = "mixed";
    o.cfg.mix = parse_mix(*mix);
  } else if (o.scenario == "mixed") {
    o.cfg.mix = parse_mix("create=1,list=9");
  } else {
    o.cfg.mix = {};
    for (std::size_t k = 0; k < tokend::bench::request_kind_count; ++k) {
      if (o.scenario == tokend::bench::to_string(static_cast<request_kind>(k))) o.cfg.mix[k] = 1;
    }
  }

  if (token && token_file) throw usage_error("give --token or --token-file, not both");
  if (token_file) token = read_token_file(*token_file);
  if (token) {
    if (token->empty()) throw usage_error("the token is empty");
    o.cfg.token = *token;
  }
  const bool needs_token = o.cfg.mix[static_cast<std::size_t>(request_kind::create)] > 0 ||
                           o.cfg.mix[static_cast<std::size_t>(request_kind::list)] > 0 ||
                           o.cfg.mix[static_cast<std::size_t>(request_kind::verify)] > 0;
  if (needs_token && o.cfg.token.empty()) {
    throw usage_error("scenario " + o.scenario + " needs --token or --token-file");
  }

  if (!duration_set && o.cfg.requests == 0) o.cfg.duration = std::chrono::seconds{10};
  o.cfg.threads = std::min(o.cfg.threads, o.cfg.connections);
  return o;
}

}  // namespace tokend::bench
