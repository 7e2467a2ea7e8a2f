// The /metrics exposition checked as Prometheus reads it: every sample belongs to a family declared
// once with HELP and TYPE before its samples, names follow the conventions (tokend_ prefix, counters
// end in _total, durations in _seconds), histograms have cumulative buckets ending in +Inf with
// matching _count and a _sum. Also: the families the README documents are all there, and every
// metric the Grafana dashboard queries exists.
#define BOOST_TEST_MODULE metrics_test
#include <boost/test/unit_test.hpp>

#include "server/app.hpp"
#include "server/metrics.hpp"
#include "storage/memory_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef TOKEND_DASHBOARD
#error "TOKEND_DASHBOARD must name deploy/grafana-dashboard.json"
#endif

namespace server = tokend::server;
namespace storage = tokend::storage;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------------------------
// A strict reader of the text exposition format 0.0.4.

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  std::size_t line = 0;
};

struct family {
  std::string help;
  std::string type;
  std::size_t help_count = 0;
  std::size_t type_count = 0;
  std::vector<sample> samples;
};

struct exposition {
  std::map<std::string, family> families;
  std::vector<std::string> problems;  // everything malformed, one message each
  std::vector<std::string> order;     // family names in order of first appearance
};

const std::regex metric_name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex label_name_re("[a-zA-Z_][a-zA-Z0-9_]*");

bool parse_value(const std::string& text, double& out) {
  if (text == "+Inf") return out = std::numeric_limits<double>::infinity(), true;
  if (text == "-Inf") return out = -std::numeric_limits<double>::infinity(), true;
  if (text == "NaN") return out = std::numeric_limits<double>::quiet_NaN(), true;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

// The family a sample name belongs to: a histogram's _bucket/_sum/_count are its own.
std::string family_of(const std::string& name, const std::map<std::string, family>& families) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      const auto it = families.find(base);
      if (it != families.end() && (it->second.type == "histogram" || it->second.type == "summary"))
        return base;
    }
  }
  return name;
}

// `{a="x",b="y"}` starting at text[pos]; advances pos past the closing brace.
bool parse_labels(const std::string& text, std::size_t& pos, std::map<std::string, std::string>& labels,
                  std::string& why) {
  ++pos;  // '{'
  while (pos < text.size() && text[pos] != '}') {
    const auto eq = text.find('=', pos);
    if (eq == std::string::npos) return why = "label without '='", false;
    const std::string name = text.substr(pos, eq - pos);
    if (!std::regex_match(name, label_name_re)) return why = "bad label name '" + name + "'", false;
    if (eq + 1 >= text.size() || text[eq + 1] != '"') return why = "label value not quoted", false;
    std::string value;
    std::size_t i = eq + 2;
    for (; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\') {
        if (++i >= text.size()) break;
        if (text[i] == 'n')
          value += '\n';
        else if (text[i] == '\\' || text[i] == '"')
          value += text[i];
        else
          return why = "bad escape in label value", false;
      } else {
        value += text[i];
      }
    }
    if (i >= text.size()) return why = "unterminated label value", false;
    if (!labels.emplace(name, value).second) return why = "label '" + name + "' repeated", false;
    pos = i + 1;
    if (pos < text.size() && text[pos] == ',') ++pos;
  }
  if (pos >= text.size()) return why = "unterminated label set", false;
  ++pos;  // '}'
  return true;
}

exposition parse_exposition(const std::string& text) {
  exposition out;
  std::istringstream in(text);
  std::string line;
  std::size_t number = 0;
  std::string current;  // the family whose samples are being read
  std::set<std::string> finished;
  const auto problem = [&](const std::string& what) {
    out.problems.push_back("line " + std::to_string(number) + ": " + what + ": " + line);
  };
  if (!text.empty() && text.back() != '\n')
    out.problems.push_back("the exposition does not end with a newline");
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line.starts_with("#")) {
      std::istringstream words(line);
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
      if (!std::regex_match(name, metric_name_re)) {
        problem("bad metric name");
        continue;
      }
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
      if (finished.contains(name) || (out.families.contains(name) && !out.families[name].samples.empty())) {
        problem("metadata after the family's samples");
      }
      if (!out.families.contains(name)) out.order.push_back(name);
      auto& f = out.families[name];
      if (keyword == "HELP") {
        ++f.help_count;
        f.help = rest;
      } else {
        ++f.type_count;
        f.type = rest;
        static const std::set<std::string> types{"counter", "gauge", "histogram", "summary", "untyped"};
        if (!types.contains(rest)) problem("unknown type");
      }
      continue;
    }
    sample s;
    s.line = number;
    std::size_t pos = line.find_first_of("{ ");
    if (pos == std::string::npos) {
      problem("sample without a value");
      continue;
    }
    s.name = line.substr(0, pos);
    if (!std::regex_match(s.name, metric_name_re)) {
      problem("bad metric name");
      continue;
    }
    if (line[pos] == '{') {
      std::string why;
      if (!parse_labels(line, pos, s.labels, why)) {
        problem(why);
        continue;
      }
    }
    if (pos >= line.size() || line[pos] != ' ') {
      problem("no space before the value");
      continue;
    }
    std::istringstream rest(line.substr(pos + 1));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (!parse_value(value, s.value) || !extra.empty()) {
      problem("bad value");
      continue;
    }
    const std::string fam = family_of(s.name, out.families);
    if (!out.families.contains(fam)) {
      problem("sample of an undeclared family '" + fam + "'");
      continue;
    }
    if (fam != current) {
      if (finished.contains(fam)) problem("samples of family '" + fam + "' are not contiguous");
      if (!current.empty()) finished.insert(current);
      current = fam;
    }
    out.families[fam].samples.push_back(std::move(s));
  }
  return out;
}

std::string without(std::map<std::string, std::string> labels, const std::string& name) {
  labels.erase(name);
  std::string key;
  for (const auto& [k, v] : labels) key += k + "=" + v + ",";
  return key;
}

// Every rule of the format and of the naming conventions; one BOOST_ERROR per violation.
void check_conventions(const std::string& text) {
  const exposition e = parse_exposition(text);
  for (const auto& p : e.problems) BOOST_ERROR(p);
  BOOST_TEST(!e.families.empty());
  for (const auto& name : e.order) {
    const family& f = e.families.at(name);
    BOOST_TEST_CONTEXT("family " << name) {
      BOOST_TEST(f.help_count == 1u, "exactly one HELP");
      BOOST_TEST(f.type_count == 1u, "exactly one TYPE");
      BOOST_TEST(!f.help.empty(), "HELP says something");
      BOOST_TEST(name.starts_with("tokend_"), "tokend_ prefix");
      BOOST_TEST(name.find("__") == std::string::npos);
      BOOST_TEST(std::regex_match(name, std::regex("[a-z0-9_]+")), "lower snake case");
      if (f.type == "counter") {
        BOOST_TEST(name.ends_with("_total"), "a counter ends in _total");
      } else {
        BOOST_TEST(!name.ends_with("_total"), "only counters end in _total");
      }
      // Base units: time in seconds, never milliseconds and friends (whole words: "_uses" is no "_us").
      for (const char* unit :
           {"_milliseconds", "_ms", "_microseconds", "_us", "_nanoseconds", "_minutes", "_bytes_kb"}) {
        BOOST_TEST((name + "_").find(std::string(unit) + "_") == std::string::npos, "non-base unit " << unit);
      }
      if (name.find("duration") != std::string::npos || name.find("latency") != std::string::npos ||
          name.find("_time") != std::string::npos) {
        BOOST_TEST(name.ends_with("_seconds"), "a time is in seconds");
      }
      for (const auto& s : f.samples) {
        if (f.type == "counter" || f.type == "histogram") BOOST_TEST(s.value >= 0, "line " << s.line);
        if (f.type != "histogram") BOOST_TEST(s.name == name, "line " << s.line);
        BOOST_TEST((!s.labels.contains("le") || f.type == "histogram"), "le only on histogram buckets");
      }
      if (f.type != "histogram") continue;

      // Group the series by their labels other than `le`.
      struct series {
        std::vector<std::pair<double, double>> buckets;  // (le, value), in exposition order
        bool inf_last = false;
        std::optional<double> sum, count;
      };
      std::map<std::string, series> all;
      for (const auto& s : f.samples) {
        auto& se = all[without(s.labels, "le")];
        if (s.name == name + "_bucket") {
          const auto le = s.labels.find("le");
          double bound = 0;
          if (le == s.labels.end() || !parse_value(le->second, bound)) {
            BOOST_ERROR("line " << s.line << ": bucket without a numeric le");
            continue;
          }
          se.buckets.emplace_back(bound, s.value);
        } else if (s.name == name + "_sum") {
          se.sum = s.value;
        } else if (s.name == name + "_count") {
          se.count = s.value;
        } else {
          BOOST_ERROR("line " << s.line << ": '" << s.name << "' in histogram " << name);
        }
      }
      BOOST_TEST(!all.empty(), "a histogram with no series");
      for (const auto& [labels, se] : all) {
        BOOST_TEST_CONTEXT("series {" << labels << "}") {
          BOOST_REQUIRE(!se.buckets.empty());
          for (std::size_t i = 1; i < se.buckets.size(); ++i) {
            BOOST_TEST(se.buckets[i - 1].first < se.buckets[i].first, "le ascending at bucket " << i);
            BOOST_TEST(se.buckets[i - 1].second <= se.buckets[i].second, "cumulative at bucket " << i);
          }
          BOOST_TEST(std::isinf(se.buckets.back().first), "the last bucket is le=\"+Inf\"");
          BOOST_TEST(se.sum.has_value(), "_sum present");
          BOOST_TEST(se.count.has_value(), "_count present");
          if (se.count) BOOST_TEST(*se.count == se.buckets.back().second, "_count equals the +Inf bucket");
        }
      }
    }
  }
}

// Metrics with something in every series: each route and several statuses, latencies across the
// buckets, a store that has batched writes.
server::metrics& busy_metrics() {
  static server::metrics m;
  static bool filled = false;
  if (!filled) {
    filled = true;
    const server::route routes[] = {server::route::create,  server::route::list,   server::route::remove,
                                    server::route::roll,    server::route::verify, server::route::update,
                                    server::route::limited, server::route::other};
    unsigned statuses[] = {200, 400, 401, 404, 503, 418};
    std::chrono::nanoseconds latency = 50us;
    for (const auto r : routes) {
      for (const auto st : statuses) {
        m.observe(r, st, latency);
        // Growing to past the last bound, and no further: 30 triplings would overflow.
        if (latency < 100s) latency = latency * 3;
      }
    }
    m.observe(server::route::list, 200, 100s);  // beyond the last bound: +Inf only
    m.observe(server::route::roll, 403, 1ms);   // a key acting beyond its rights
    for (int i = 0; i < 2; ++i) {
      m.observe(server::route::verify, 429, 1us);
      m.rate_limited(server::route::verify);
    }
    m.observe(server::route::create, 429, 1us);
    m.rate_limited(server::route::create);
    m.connection_opened();
    m.connection_opened();
    m.connection_closed();
  }
  return m;
}

storage::store_stats busy_store() {
  storage::store_stats st;
  st.queue_depth = 3;
  st.batches = 10;
  st.batch_size_counts = {4, 2, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1};
  st.batched_writes = 4 * 1 + 2 * 2 + 3 + 4 + 60 + 5000;
  st.write_failures = 1;
  return st;
}

std::string busy_text() {
  return busy_metrics().render({90, 10, 50, 1000}, busy_store(), true, {}, {120, 7}, {12, 3});
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void collect_exprs(const json::value& v, std::vector<std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      if (k == "expr" && child.is_string()) out.emplace_back(child.as_string());
      collect_exprs(child, out);
    }
  } else if (v.is_array()) {
    for (const auto& child : v.as_array()) collect_exprs(child, out);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_parser_catches_what_it_should) {
  // The checks are only worth something if a broken exposition fails them.
  BOOST_TEST(!parse_exposition("tokend_x 1\n").problems.empty(), "sample of an undeclared family");
  BOOST_TEST(!parse_exposition("# HELP a b\n# TYPE a gauge\na{x=\"1} 1\n").problems.empty(),
             "unterminated label");
  BOOST_TEST(!parse_exposition("# HELP a b\n# TYPE a gauge\na one\n").problems.empty(), "bad value");
  BOOST_TEST(!parse_exposition("# HELP a b\n# TYPE a gauge\na 1\n# HELP c d\n# TYPE c gauge\nc 1\na 2\n")
                  .problems.empty(),
             "interleaved families");
  BOOST_TEST(!parse_exposition("# HELP a b\n# TYPE a gauge\na 1\n# TYPE a gauge\n").problems.empty(),
             "metadata after samples");
  const auto ok = parse_exposition(
      "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n");
  BOOST_TEST(ok.problems.empty());
  BOOST_TEST(ok.families.at("h").samples.size() == 4u);
}

BOOST_AUTO_TEST_CASE(exposition_follows_the_format_and_naming_conventions) {
  const std::string text = busy_text();
  BOOST_TEST_MESSAGE(text);
  check_conventions(text);
}

BOOST_AUTO_TEST_CASE(an_idle_exposition_is_valid_too) {
  const server::metrics fresh;
  check_conventions(fresh.render({}, {}, false));
}

BOOST_AUTO_TEST_CASE(figures_are_rendered_faithfully) {
  const exposition e = parse_exposition(busy_text());
  const auto value = [&](const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    for (const auto& s : e.families.at(family_of(name, e.families)).samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    BOOST_ERROR("no sample " << name);
    return -1.0;
  };
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "create"}, {"status", "200"}}) == 1);
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "list"}, {"status", "200"}}) == 2);
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "other"}, {"status", "other"}}) == 1);  // 418
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "roll"}, {"status", "200"}}) == 1);
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "roll"}, {"status", "403"}}) == 1);
  BOOST_TEST(value("tokend_http_request_duration_seconds_count", {{"route", "list"}}) == 7);
  BOOST_TEST(value("tokend_http_request_duration_seconds_bucket", {{"route", "list"}, {"le", "10"}}) == 6);
  BOOST_TEST(value("tokend_http_request_duration_seconds_bucket", {{"route", "list"}, {"le", "+Inf"}}) == 7);
  BOOST_TEST(value("tokend_http_request_duration_seconds_sum", {{"route", "list"}}) > 100.0);
  BOOST_TEST(value("tokend_open_connections") == 1);
  BOOST_TEST(value("tokend_http_connections_total") == 2);
  BOOST_TEST(value("tokend_cache_hits_total") == 90);
  BOOST_TEST(value("tokend_cache_misses_total") == 10);
  BOOST_TEST(value("tokend_cache_entries") == 50);
  BOOST_TEST(value("tokend_cache_capacity") == 1000);
  BOOST_TEST(value("tokend_store_write_batches_total") == 10);
  BOOST_TEST(value("tokend_store_write_failures_total") == 1);
  BOOST_TEST(value("tokend_store_queue_depth") == 3);
  BOOST_TEST(value("tokend_store_batch_size_bucket", {{"le", "1"}}) == 4);
  BOOST_TEST(value("tokend_store_batch_size_bucket", {{"le", "2"}}) == 6);
  BOOST_TEST(value("tokend_store_batch_size_bucket", {{"le", "+Inf"}}) == 10);
  BOOST_TEST(value("tokend_store_batch_size_count") == 10);
  BOOST_TEST(value("tokend_key_uses_recorded_total") == 120);
  BOOST_TEST(value("tokend_expired_tokens_removed_total") == 7);
  BOOST_TEST(value("tokend_rate_limited_total", {{"route", "verify"}}) == 2);
  BOOST_TEST(value("tokend_rate_limited_total", {{"route", "create"}}) == 1);
  BOOST_TEST(value("tokend_rate_limited_total", {{"route", "update"}}) == 0);
  BOOST_TEST(value("tokend_rate_limited_total", {{"route", "limited"}}) == 0);
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "verify"}, {"status", "429"}}) == 2);
  BOOST_TEST(value("tokend_http_requests_total", {{"route", "update"}, {"status", "200"}}) == 1);
  BOOST_TEST(value("tokend_rate_limit_buckets") == 12);
  BOOST_TEST(value("tokend_rate_limit_share") == 3);
  BOOST_TEST(value("tokend_ready") == 1);
  BOOST_TEST(value("tokend_start_time_seconds") > 1.6e9);
  const auto& build = e.families.at("tokend_build_info").samples;
  BOOST_REQUIRE_EQUAL(build.size(), 1u);
  BOOST_TEST(build.front().value == 1);
  BOOST_TEST(!build.front().labels.at("version").empty());
}

BOOST_AUTO_TEST_CASE(the_running_service_exposes_every_documented_family) {
  server::config cfg;
  cfg.threads = 1;
  server::app app(cfg, storage::make_memory_store());
  const std::string text = app.metrics_text();
  check_conventions(text);
  const exposition e = parse_exposition(text);
  // The families README.md ("Operations") and the Grafana dashboard rely on.
  for (const char* name : {"tokend_http_requests_total",
                           "tokend_http_request_duration_seconds",
                           "tokend_open_connections",
                           "tokend_http_connections_total",
                           "tokend_cache_hits_total",
                           "tokend_cache_misses_total",
                           "tokend_cache_entries",
                           "tokend_cache_capacity",
                           "tokend_store_write_batches_total",
                           "tokend_store_batched_writes_total",
                           "tokend_store_write_failures_total",
                           "tokend_store_batch_size",
                           "tokend_store_queue_depth",
                           "tokend_key_uses_recorded_total",
                           "tokend_expired_tokens_removed_total",
                           "tokend_ready",
                           "tokend_start_time_seconds",
                           "tokend_build_info",
                           "tokend_rate_limited_total",
                           "tokend_rate_limit_buckets",
                           "tokend_rate_limit_share"}) {
    BOOST_TEST(e.families.contains(name), name);
  }
}

BOOST_AUTO_TEST_CASE(the_dashboard_queries_only_metrics_that_exist) {
  const json::value dashboard = json::parse(read_text(TOKEND_DASHBOARD));
  std::vector<std::string> exprs;
  collect_exprs(dashboard, exprs);
  BOOST_TEST(exprs.size() >= 6u, "throughput, errors, latency, cache, batches, queue at least");

  std::set<std::string> samples;
  for (const auto& [name, f] : parse_exposition(busy_text()).families) {
    for (const auto& s : f.samples) samples.insert(s.name);
  }
  const std::regex metric_re("tokend_[a-z0-9_]+");
  bool quantile = false;
  for (const auto& expr : exprs) {
    BOOST_TEST_CONTEXT("expr " << expr) {
      std::size_t mentioned = 0;
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric_re), end; it != end; ++it) {
        ++mentioned;
        BOOST_TEST(samples.contains(it->str()), it->str() << " is not exposed");
      }
      BOOST_TEST(mentioned > 0u);
      if (expr.find("histogram_quantile") != std::string::npos) {
        quantile = true;
        BOOST_TEST(expr.find("_bucket") != std::string::npos);
        BOOST_TEST(expr.find("le") != std::string::npos, "quantiles aggregate by le");
      }
    }
  }
  BOOST_TEST(quantile, "latency quantiles via histogram_quantile");
}
