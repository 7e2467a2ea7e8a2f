// tokend-bench's HTML report (see report_html.hpp): each section of the page is one function.
#include "bench/report_html.hpp"

#include "bench/report.hpp"
#include "bench/svg_chart.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace tokend::bench {
namespace {

constexpr std::string_view style = R"(
body { font-family: sans-serif; color: #222; max-width: 900px; margin: 24px auto; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 20px; border-bottom: 1px solid #ccc; padding-bottom: 3px; }
p.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e2e2e2; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
td.bad { color: #b00020; font-weight: bold; }
div.chart { margin: 8px 0; }
div.row { display: flex; gap: 28px; align-items: flex-start; flex-wrap: wrap; }
table.parameters th { text-align: left; font-weight: normal; background: none; color: #555; }
table.parameters td { text-align: left; }
)";

constexpr std::string_view color_all = "#1f5fa8";
constexpr std::string_view color_errors = "#c62828";
constexpr std::array<std::string_view, request_kind_count> kind_colors = {"#2e7d32", "#6a1b9a", "#ef6c00",
                                                                          "#00838f", "#8d6e63"};

// An axis label: whole numbers grouped by thousands, others with up to three significant digits.
std::string plain_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return grouped(static_cast<std::uint64_t>(std::fabs(v)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string row(std::string_view name, std::string_view value) {
  return "<tr><th>" + xml_escape(name) + "</th><td>" + xml_escape(value) + "</td></tr>";
}

bool is_mixed(const load_config& cfg) {
  return std::count_if(cfg.mix.begin(), cfg.mix.end(), [](unsigned w) { return w > 0; }) > 1;
}

// The target as the page may show it: the authority and the request path, never a query (a
// --path query can carry a key) nor the user's --url beyond its host.
std::string shown_target(const load_config& cfg, std::string_view scenario) {
  std::string path = cfg.path;
  if (path.empty()) path = scenario == "verify" || scenario == "verify-fail" ? "/verify" : "/api/v2/tokens";
  if (const auto q = path.find('?'); q != std::string::npos) path = path.substr(0, q) + "?(query not shown)";
  return "http://" + cfg.host_header + path;
}

// --- Sections --------------------------------------------------------------------------------

std::string summary_section(const run_info& info, const load_result& r) {
  const load_config& cfg = *info.config;
  const histogram& h = r.latency;
  std::string out = "<h2>Summary</h2><table class=\"summary\">";
  out +=
      "<tr><th>requests</th><th>responses</th><th>2xx</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th>"
      "<th>p99.9</th><th>max</th></tr>";
  auto line = [&](std::string_view label, std::uint64_t responses, std::uint64_t ok, const histogram& lat) {
    out += "<tr><td>" + xml_escape(label) + "</td><td>" + grouped(responses) + "</td><td>" + grouped(ok) +
           "</td><td>" + fixed(per_second(responses, r.elapsed), 1) + "</td>";
    for (const double p : {50.0, 90.0, 99.0, 99.9})
      out += "<td>" + format_latency(lat.percentile(p)) + "</td>";
    out += "<td>" + format_latency(lat.max()) + "</td></tr>";
  };
  line("all", r.responses, r.successes, h);
  if (is_mixed(cfg)) {
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      if (cfg.mix[k] == 0) continue;
      const auto& kr = r.by_kind[k];
      line(to_string(static_cast<request_kind>(k)), kr.responses, kr.successes, kr.latency);
    }
  }
  return out + "</table>";
}

// Responses and errors per second as steps, one flat segment per second of the window (the last,
// partial second scaled to a rate like the others).
chart throughput_chart(const load_result& r) {
  chart c;
  c.id = "throughput";
  c.title = "Throughput over time";
  chart_series all{"responses/s", std::string(color_all), {}};
  chart_series bad{"errors/s (non-2xx + transport)", std::string(color_errors), {}};
  const double window = seconds(r.elapsed);
  double top = 0;
  for (std::size_t i = 0; i < r.per_second.size(); ++i) {
    const double covered = std::min(1.0, window - static_cast<double>(i));
    if (covered < 0.05) continue;  // a response that landed just past the window's end
    const auto& s = r.per_second[i];
    const double from = static_cast<double>(i);
    const double responses = static_cast<double>(s.responses) / covered;
    const double errors = static_cast<double>(s.non_2xx + s.transport_errors) / covered;
    all.points.insert(all.points.end(), {{from, responses}, {from + covered, responses}});
    bad.points.insert(bad.points.end(), {{from, errors}, {from + covered, errors}});
    top = std::max(top, responses);
  }
  c.y.ticks = nice_ticks(std::max(top, 1.0), 6, c.y.max, plain_number);
  c.y.title = "requests/s";
  c.x.ticks = nice_ticks(std::max(window, 1.0), 8, c.x.max, plain_number);
  c.x.title = "seconds into the measured window";
  c.series = {std::move(all), std::move(bad)};
  return c;
}

// "0%", "90%", "99%", "99.9%"...: the percentile at 1/(1-p) = 10^k.
std::string percentile_label(double k) {
  if (k < 0.5) return "0%";
  const int nines = static_cast<int>(std::lround(k));
  return fixed(100.0 * (1.0 - std::pow(10.0, -nines)), std::max(0, nines - 2)) + "%";
}

// One latency curve: x = log10(1/(1-p)), sampled finely up to the last percentile the count
// resolves (1 - 1/count), then the maximum.
chart_series spectrum(std::string name, std::string_view color, const histogram& h, double unit_ns,
                      double x_max) {
  chart_series s{std::move(name), std::string(color), {}};
  if (h.count() == 0) return s;
  const double x_last = std::min(x_max, std::log10(static_cast<double>(h.count())));
  for (double x = 0; x < x_last; x += 0.02) {
    const double p = 100.0 * (1.0 - std::pow(10.0, -x));
    s.points.emplace_back(x, static_cast<double>(h.percentile(p)) / unit_ns);
  }
  s.points.emplace_back(std::max(x_last, 0.0), static_cast<double>(h.max()) / unit_ns);
  return s;
}

chart latency_chart(const run_info& info, const load_result& r) {
  const load_config& cfg = *info.config;
  chart c;
  c.id = "latency";
  c.title = "Latency by percentile";
  const auto max_ns = static_cast<double>(r.latency.max());
  const double unit_ns = max_ns < 1e6 ? 1e3 : max_ns < 1e9 ? 1e6 : 1e9;
  const std::string unit = max_ns < 1e6 ? "µs" : max_ns < 1e9 ? "ms" : "s";
  const double count = std::max<double>(10, static_cast<double>(r.latency.count()));
  // The last whole nine the count resolves (rounded: 10,883 values reach about 99.99%).
  c.x.max = std::clamp(std::round(std::log10(count)), 2.0, 6.0);
  for (int k = 0; k <= static_cast<int>(c.x.max); ++k) c.x.ticks.emplace_back(k, percentile_label(k));
  c.x.title = "percentile (log scale: 1/(1-p))";
  if (is_mixed(cfg)) {
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      if (cfg.mix[k] == 0) continue;
      c.series.push_back(spectrum(std::string(to_string(static_cast<request_kind>(k))), kind_colors[k],
                                  r.by_kind[k].latency, unit_ns, c.x.max));
    }
  }
  // The whole last, so that it is drawn over the kinds it sums.
  c.series.push_back(spectrum("all", color_all, r.latency, unit_ns, c.x.max));
  c.y.ticks = nice_ticks(std::max(max_ns / unit_ns, 1e-3), 6, c.y.max, plain_number);
  c.y.title = "latency (" + unit + ")";
  return c;
}

std::string chart_section(std::string_view heading, const chart& c, std::string_view note) {
  return "<h2>" + xml_escape(heading) + "</h2><p class=\"sub\">" + xml_escape(note) +
         "</p><div class=\"chart\">" + render_svg(c) + "</div>";
}

std::string share(std::uint64_t n, std::uint64_t total) {
  return total > 0 ? fixed(100.0 * static_cast<double>(n) / static_cast<double>(total), 2) + "%" : "-";
}

std::string errors_section(const load_result& r) {
  std::string out =
      "<h2>Errors</h2><div class=\"row\"><table class=\"status-classes\"><tr><th>status class</th>"
      "<th>responses</th><th>share</th></tr>";
  std::array<std::uint64_t, 6> classes{};  // [0]: codes outside 100-599
  for (std::size_t code = 1; code < r.status.size(); ++code) classes[code / 100] += r.status[code];
  classes[0] += r.status[0];
  for (std::size_t c = 1; c <= 5; ++c) {
    const bool bad = c != 2 && classes[c] > 0;
    out += "<tr><td>" + std::to_string(c) + "xx</td><td" + (bad ? " class=\"bad\"" : "") + ">" +
           grouped(classes[c]) + "</td><td>" + share(classes[c], r.responses) + "</td></tr>";
  }
  out += "<tr><td>other</td><td>" + grouped(classes[0]) + "</td><td>" + share(classes[0], r.responses) +
         "</td></tr></table>";

  out += "<table class=\"status-codes\"><tr><th>status</th><th>responses</th></tr>";
  for (std::size_t code = 1; code < r.status.size(); ++code) {
    if (r.status[code] != 0)
      out += "<tr><td>" + std::to_string(code) + "</td><td>" + grouped(r.status[code]) + "</td></tr>";
  }
  if (r.status[0] != 0) out += "<tr><td>600 and above</td><td>" + grouped(r.status[0]) + "</td></tr>";
  out += "</table>";

  out += "<table class=\"transport-errors\"><tr><th>transport error</th><th>requests lost</th></tr>";
  for (std::size_t e = 0; e < r.errors.size(); ++e) {
    out += "<tr><td>" + std::string(to_string(static_cast<transport_error>(e))) + "</td><td" +
           (r.errors[e] > 0 ? " class=\"bad\"" : "") + ">" + grouped(r.errors[e]) + "</td></tr>";
  }
  out += "<tr><td>reconnects</td><td>" + grouped(r.reconnects) + "</td></tr></table></div>";
  return out;
}

std::string mix_text(const load_config& cfg) {
  std::string out;
  for (std::size_t k = 0; k < request_kind_count; ++k) {
    if (cfg.mix[k] == 0) continue;
    if (!out.empty()) out += ",";
    out += std::string(to_string(static_cast<request_kind>(k))) + "=" + std::to_string(cfg.mix[k]);
  }
  return out;
}

// Header names only: a value can carry a key (e.g. X-Original-URI with ?token=).
std::string header_names(const load_config& cfg) {
  std::string out;
  for (const auto& line : cfg.headers) {
    if (!out.empty()) out += ", ";
    out += line.substr(0, line.find(':'));
  }
  return out.empty() ? "-" : out + " (values not shown)";
}

std::string parameters_section(const run_info& info, const load_result& r) {
  const load_config& cfg = *info.config;
  // Two tables side by side: what is sent, and how much of it for how long.
  std::string out = "<h2>Parameters</h2><div class=\"row\"><table class=\"parameters\">";
  out += row("target", shown_target(cfg, info.scenario));
  out += row("scenario", info.scenario);
  if (is_mixed(cfg)) out += row("mix", mix_text(cfg));
  out += row("method", cfg.method.empty() ? "the scenario's" : cfg.method);
  out += row("extra headers", header_names(cfg));
  out += row("connections", std::to_string(cfg.connections));
  out += "</table><table class=\"parameters\">";
  out += row("threads", std::to_string(cfg.threads));
  out += row("pipeline", std::to_string(cfg.pipeline));
  out += row("rate", cfg.rate > 0 ? fixed(cfg.rate, 1) + " req/s, open loop" : "closed loop");
  out += row("duration", cfg.duration.count() > 0 ? fixed(seconds(cfg.duration), 2) + " s" : "-");
  out += row("requests", cfg.requests > 0 ? grouped(cfg.requests) : "-");
  out += row("warmup", fixed(seconds(cfg.warmup), 2) + " s");
  out += row("timeout", fixed(seconds(cfg.timeout), 2) + " s");
  out += row("measured window", fixed(seconds(r.elapsed), 2) + " s");
  return out + "</table></div>";
}

// Every occurrence of `key` in `page` replaced: the page may be shared, the key must not be.
void redact(std::string& page, const std::string& key) {
  if (key.empty()) return;
  for (auto at = page.find(key); at != std::string::npos; at = page.find(key, at)) {
    page.replace(at, key.size(), "[key]");
  }
}

}  // namespace

std::string html_report(const run_info& info, const load_result& r) {
  const load_config& cfg = *info.config;
  const std::string title =
      "tokend-bench: " + info.scenario + ", " + fixed(per_second(r.responses, r.elapsed), 0) + " req/s";
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
      "<meta name=\"viewport\" content=\"width=device-width\"/><title>" +
      xml_escape(title) + "</title><style>" + std::string(style) + "</style></head><body>";
  page += "<h1>" + xml_escape(title) + "</h1><p class=\"sub\">" +
          xml_escape(shown_target(cfg, info.scenario)) + " &#183; " + std::to_string(cfg.connections) +
          " connections &#183; " + (cfg.rate > 0 ? "open loop" : "closed loop") + " &#183; " +
          fixed(seconds(r.elapsed), 2) + " s measured</p>";
  page += summary_section(info, r);
  page += chart_section("Throughput", throughput_chart(r),
                        "Responses per second of the measured window, "
                        "and the errors among them (non-2xx responses and "
                        "requests lost to transport errors).");
  page +=
      chart_section("Latency", latency_chart(info, r),
                    std::string("The latency spectrum as HdrHistogram plots draw it: each step right is one "
                                "more nine (90%, 99%, 99.9%...), so the tail is as wide as the median.") +
                        (cfg.rate > 0 ? " Open loop: latency counts from the scheduled send time." : ""));
  page += errors_section(r);
  page += parameters_section(info, r);
  page += "</body></html>\n";
  redact(page, cfg.token);
  redact(page, cfg.create_token);
  return page;
}

}  // namespace tokend::bench
