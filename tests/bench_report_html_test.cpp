// tokend-bench's HTML report (bench/report_html.cpp, bench/svg_chart.cpp) built from a made-up
// load_result: the page is well-formed (every tag closed, attributes quoted, entities known), holds
// both plots with their series and percentile axis, the numbers and the run's parameters, loads
// nothing from anywhere else, and never shows the key.
#define BOOST_TEST_MODULE bench_report_html_test
#include <boost/test/unit_test.hpp>

#include "bench/report.hpp"
#include "bench/report_html.hpp"

#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bench = tokend::bench;
using bench::request_kind;

namespace {

const std::string key = "9fe4f9" + std::string(58, 'a');
const std::string create_key = "17c0de" + std::string(58, 'b');

// --- A small XML checker: enough for a page that closes every element, void ones as <x/>. ------

struct element {
  std::string name;
  std::map<std::string, std::string> attributes;
};

struct parsed_page {
  std::string error;  // empty when well-formed
  std::vector<element> elements;
};

bool known_entity(std::string_view s) {
  for (std::string_view e : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#183;"}) {
    if (s.substr(0, e.size()) == e) return true;
  }
  return false;
}

// Attributes of a start tag's inside (after its name): name="value" pairs, nothing else.
std::string parse_attributes(std::string_view in, element& e) {
  std::size_t i = 0;
  while (i < in.size()) {
    if (in[i] == ' ') {
      ++i;
      continue;
    }
    const auto eq = in.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= in.size() || in[eq + 1] != '"') {
      return "attribute without a quoted value in <" + e.name + ">";
    }
    const auto close = in.find('"', eq + 2);
    if (close == std::string_view::npos) return "unclosed attribute value in <" + e.name + ">";
    const std::string name(in.substr(i, eq - i));
    if (!e.attributes.emplace(name, std::string(in.substr(eq + 2, close - eq - 2))).second) {
      return "attribute " + name + " twice in <" + e.name + ">";
    }
    i = close + 1;
  }
  return {};
}

parsed_page parse_page(std::string_view page) {
  parsed_page out;
  std::vector<std::string> open;
  std::size_t i = 0;
  while (i < page.size()) {
    if (page[i] == '&') {
      if (!known_entity(page.substr(i))) return {"a bare & at " + std::to_string(i), {}};
      ++i;
      continue;
    }
    if (page[i] == '>') return {"a bare > at " + std::to_string(i), {}};
    if (page[i] != '<') {
      ++i;
      continue;
    }
    const auto end = page.find('>', i);
    if (end == std::string_view::npos) return {"an unclosed tag at " + std::to_string(i), {}};
    std::string_view tag = page.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.find('<') != std::string_view::npos) return {"a < inside a tag", {}};
    if (tag.substr(0, 8) == "!DOCTYPE") continue;
    if (tag.front() == '/') {
      if (open.empty() || open.back() != tag.substr(1)) {
        return {"</" + std::string(tag.substr(1)) + "> closes " + (open.empty() ? "nothing" : open.back()),
                {}};
      }
      open.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    if (self_closing) tag.remove_suffix(1);
    element e;
    const auto space = tag.find(' ');
    e.name = std::string(tag.substr(0, space));
    if (space != std::string_view::npos) {
      if (auto err = parse_attributes(tag.substr(space), e); !err.empty()) return {err, {}};
    }
    if (!self_closing) open.push_back(e.name);
    out.elements.push_back(std::move(e));
  }
  if (!open.empty()) return {"<" + open.back() + "> is never closed", {}};
  return out;
}

std::size_t count_of(const std::string& page, std::string_view what) {
  std::size_t n = 0;
  for (auto at = page.find(what); at != std::string::npos; at = page.find(what, at + 1)) ++n;
  return n;
}

// --- A made-up run ------------------------------------------------------------------------------

bench::load_config mixed_config() {
  bench::load_config cfg;
  cfg.host_header = "tokend.example:8080";
  cfg.token = key;
  cfg.create_token = create_key;
  cfg.mix = {1, 9, 0, 0, 0};
  cfg.path = "/api/v2/tokens?token=" + key;  // a key in a --path query must not reach the page
  cfg.headers = {"X-Original-URI: /api/items?token=" + key};
  cfg.connections = 48;
  cfg.threads = 3;
  cfg.pipeline = 4;
  cfg.rate = 2500;
  cfg.duration = std::chrono::milliseconds{10'400};
  cfg.warmup = std::chrono::seconds{1};
  return cfg;
}

// 100,000 latencies from 50us to about 40ms, a long tail; 2xx, 401 and 503 answers; transport errors.
bench::load_result mixed_result() {
  bench::load_result r;
  r.elapsed = std::chrono::milliseconds{10'400};
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    const double tail = 1.0 / (1.0 - static_cast<double>(i) / 100'000.0);
    const auto ns = static_cast<std::uint64_t>(50'000 * std::pow(tail, 0.7));
    const auto kind = i % 10 == 0 ? request_kind::create : request_kind::list;
    r.latency.record(ns);
    auto& kr = r.by_kind[static_cast<std::size_t>(kind)];
    kr.latency.record(ns);
    ++kr.responses;
    ++kr.successes;
  }
  r.responses = 100'000;
  r.successes = 99'000;
  r.status[200] = 99'000;
  r.status[401] = 900;
  r.status[503] = 100;
  r.errors[static_cast<std::size_t>(bench::transport_error::timeout)] = 3;
  r.errors[static_cast<std::size_t>(bench::transport_error::reset)] = 2;
  r.reconnects = 2;
  r.per_second.resize(11);
  for (std::size_t s = 0; s < 11; ++s) r.per_second[s] = {s == 10 ? 3'600U : 9'640U, s == 4 ? 1'000U : 0U, 0};
  r.per_second[7].transport_errors = 5;
  r.ever_connected = true;
  return r;
}

const element* find_by_id(const parsed_page& p, std::string_view id) {
  for (const auto& e : p.elements) {
    if (auto it = e.attributes.find("id"); it != e.attributes.end() && it->second == id) return &e;
  }
  return nullptr;
}

// The polylines of the <svg id=...>, in order, as their number of points.
std::vector<std::size_t> polylines_in(const std::string& page, std::string_view id) {
  const auto begin = page.find("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + std::string(id) + "\"");
  const auto end = page.find("</svg>", begin);
  std::vector<std::size_t> out;
  for (auto at = page.find("points=\"", begin); at < end; at = page.find("points=\"", at + 1)) {
    const auto close = page.find('"', at + 8);
    out.push_back(count_of(page.substr(at + 8, close - at - 8), ","));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_checker_has_teeth) {
  BOOST_TEST(parse_page("<p><b>x</b></p><br/>").error.empty());
  for (const char* bad : {"<p><b>x</p></b>", "<p>x", "<p a=b>x</p>", "<p a=\"b>x</p>", "<p>a & b</p>",
                          "<p>a > b</p>", "</p>"}) {
    BOOST_TEST(!parse_page(bad).error.empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(the_page_is_well_formed_and_holds_both_plots) {
  const auto cfg = mixed_config();
  const auto r = mixed_result();
  const std::string page = bench::html_report({"http://tokend.example:8080", "mixed", &cfg}, r);
  const auto parsed = parse_page(page);
  BOOST_TEST_REQUIRE(parsed.error.empty(), parsed.error);
  BOOST_TEST(page.substr(0, 15) == "<!DOCTYPE html>");
  BOOST_TEST(count_of(page, "<svg ") == 2U);
  BOOST_TEST_REQUIRE(find_by_id(parsed, "throughput") != nullptr);
  BOOST_TEST_REQUIRE(find_by_id(parsed, "latency") != nullptr);
  BOOST_TEST(find_by_id(parsed, "throughput")->name == "svg");

  // Throughput: responses/s and errors/s, one step (two points) per second of the 10.4 s window.
  BOOST_TEST(polylines_in(page, "throughput") == std::vector<std::size_t>({22, 22}),
             boost::test_tools::per_element());
  BOOST_TEST(page.find("errors/s") != std::string::npos);
  // Latency: the whole and each kind of the mix; 100,000 values resolve up to 99.999%.
  BOOST_TEST(polylines_in(page, "latency").size() == 3U);
  for (const auto n : polylines_in(page, "latency")) BOOST_TEST(n > 100U);
  for (const char* label : {">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", ">99.999%<"}) {
    BOOST_TEST(page.find(label) != std::string::npos, label);
  }
  BOOST_TEST(page.find(">99.9999%<") == std::string::npos);
  BOOST_TEST(page.find("latency (ms)") != std::string::npos);
  for (const char* bad : {"nan", "inf"}) BOOST_TEST(page.find(bad) == std::string::npos, bad);
}

BOOST_AUTO_TEST_CASE(the_page_shows_the_numbers_errors_and_parameters) {
  const auto cfg = mixed_config();
  const auto r = mixed_result();
  const std::string page = bench::html_report({"http://tokend.example:8080", "mixed", &cfg}, r);
  for (const std::string& text : {
           std::string("9615.4"),  // 100,000 responses in 10.4 s
           bench::format_latency(r.latency.percentile(99)),
           bench::format_latency(r.latency.percentile(99.9)),
           bench::format_latency(r.latency.max()),
           std::string("<td>401</td><td>900</td>"),
           std::string("<td>503</td><td>100</td>"),
           std::string("<td>4xx</td><td class=\"bad\">900</td><td>0.90%</td>"),
           std::string("<td>timeout</td><td class=\"bad\">3</td>"),
           std::string("<td>reset</td><td class=\"bad\">2</td>"),
           std::string("<th>target</th><td>http://tokend.example:8080/api/v2/tokens?(query not shown)</td>"),
           std::string("<th>mix</th><td>create=1,list=9</td>"),
           std::string("<th>connections</th><td>48</td>"),
           std::string("<th>threads</th><td>3</td>"),
           std::string("<th>pipeline</th><td>4</td>"),
           std::string("<th>rate</th><td>2500.0 req/s"),
           std::string("<th>duration</th><td>10.40 s</td>"),
           std::string("<th>extra headers</th><td>X-Original-URI (values not shown)</td>"),
       }) {
    BOOST_TEST(page.find(text) != std::string::npos, text);
  }
}

BOOST_AUTO_TEST_CASE(the_page_loads_nothing_and_never_shows_the_key) {
  const auto cfg = mixed_config();
  const auto r = mixed_result();
  // However a key gets into what the page shows (here the scenario's name), it is replaced.
  const std::string page = bench::html_report({"http://tokend.example:8080", "mixed " + key, &cfg}, r);
  BOOST_TEST(page.find(key) == std::string::npos);
  BOOST_TEST(page.find(create_key) == std::string::npos);
  BOOST_TEST(page.find("mixed [key]") != std::string::npos);

  const auto parsed = parse_page(page);
  BOOST_TEST_REQUIRE(parsed.error.empty(), parsed.error);
  for (const auto& e : parsed.elements) {
    for (const char* tag : {"script", "link", "img", "iframe", "object", "embed", "image", "use"}) {
      BOOST_TEST(e.name != tag, "a <" << tag << "> element");
    }
    for (const auto& [name, value] : e.attributes) {
      BOOST_TEST((name != "src" && name != "href" && name != "xlink:href"), name);
      if (name == "xmlns") {
        BOOST_TEST(value == "http://www.w3.org/2000/svg");
        continue;
      }
      BOOST_TEST(value.find("//") == std::string::npos, name << "=" << value);
    }
  }
  // Outside attributes, "//" appears only in the target's text (a URL shown, not loaded).
  std::string rest = page;
  for (const std::string shown : {"xmlns=\"http://www.w3.org/2000/svg\"", "http://tokend.example:8080/api"}) {
    for (auto at = rest.find(shown); at != std::string::npos; at = rest.find(shown))
      rest.erase(at, shown.size());
  }
  BOOST_TEST(rest.find("//") == std::string::npos);
  for (const char* bad : {"url(", "@import", "<script"}) BOOST_TEST(page.find(bad) == std::string::npos, bad);
}

BOOST_AUTO_TEST_CASE(an_empty_run_still_makes_a_page) {
  bench::load_config cfg;
  cfg.mix = {0, 0, 1, 0, 0};
  const bench::load_result r;  // nothing answered, no second recorded
  const std::string page = bench::html_report({"http://127.0.0.1:8080", "authfail", &cfg}, r);
  const auto parsed = parse_page(page);
  BOOST_TEST(parsed.error.empty(), parsed.error);
  BOOST_TEST(count_of(page, "<svg ") == 2U);
  BOOST_TEST(page.find("<th>scenario</th><td>authfail</td>") != std::string::npos);
  BOOST_TEST(page.find("closed loop") != std::string::npos);
  for (const char* bad : {"nan", "inf"}) BOOST_TEST(page.find(bad) == std::string::npos, bad);
}
