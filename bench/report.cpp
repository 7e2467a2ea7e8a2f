// Report formatting for tokend-bench (see report.hpp).
#include "bench/report.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdio>
#include <ostream>

namespace tokend::bench {

std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

double per_second(std::uint64_t n, std::chrono::nanoseconds d) {
  return d.count() > 0 ? static_cast<double>(n) / seconds(d) : 0.0;
}

namespace {

double micros(std::uint64_t ns) { return static_cast<double>(ns) / 1e3; }

boost::json::object latency_json(const histogram& h) {
  boost::json::object o;
  o["count"] = h.count();
  o["min"] = micros(h.min());
  o["mean"] = h.mean() / 1e3;
  o["p50"] = micros(h.percentile(50));
  o["p90"] = micros(h.percentile(90));
  o["p99"] = micros(h.percentile(99));
  o["p99_9"] = micros(h.percentile(99.9));
  o["max"] = micros(h.max());
  return o;
}

std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

bool mixed(const load_config& cfg) {
  int kinds = 0;
  for (auto w : cfg.mix) kinds += w > 0 ? 1 : 0;
  return kinds > 1;
}

}  // namespace

std::string format_latency(std::uint64_t ns) {
  const auto v = static_cast<double>(ns);
  if (ns < 1'000) return std::to_string(ns) + "ns";
  if (ns < 1'000'000) return fixed(v / 1e3, v < 1e4 ? 2 : 1) + "us";
  if (ns < 1'000'000'000) return fixed(v / 1e6, v < 1e7 ? 2 : 1) + "ms";
  return fixed(v / 1e9, 2) + "s";
}

void print_table(std::ostream& out, const run_info& info, const load_result& r) {
  const load_config& cfg = *info.config;
  out << "tokend-bench  " << info.url << "  scenario " << info.scenario << "  " << cfg.connections
      << " connections  " << cfg.threads << (cfg.threads == 1 ? " thread" : " threads") << "  pipeline "
      << cfg.pipeline << "  ";
  if (cfg.rate > 0) {
    out << "open loop at " << fixed(cfg.rate, 1) << " req/s (latency from the scheduled send time)\n";
  } else {
    out << "closed loop\n";
  }
  out << "  window       " << fixed(seconds(r.elapsed), 2) << "s";
  if (cfg.warmup.count() > 0) out << " (after " << fixed(seconds(cfg.warmup), 2) << "s warmup)";
  out << "\n";
  out << "  responses    " << grouped(r.responses) << "  (2xx " << grouped(r.successes) << ", other "
      << grouped(r.responses - r.successes) << ")   transport errors " << grouped(r.transport_errors())
      << "   reconnects " << grouped(r.reconnects) << "\n";
  out << "  throughput   " << fixed(per_second(r.responses, r.elapsed), 1) << " req/s   (2xx "
      << fixed(per_second(r.successes, r.elapsed), 1) << " req/s)\n";
  out << "  status      ";
  bool any = false;
  for (std::size_t code = 1; code < r.status.size(); ++code) {
    if (r.status[code] == 0) continue;
    out << "  " << code << ": " << grouped(r.status[code]);
    any = true;
  }
  if (r.status[0] != 0) {
    out << "  other: " << grouped(r.status[0]);
    any = true;
  }
  out << (any ? "\n" : "  -\n");
  if (r.transport_errors() > 0) {
    out << "  errors      ";
    for (std::size_t e = 0; e < r.errors.size(); ++e) {
      if (r.errors[e] != 0)
        out << "  " << to_string(static_cast<transport_error>(e)) << ": " << grouped(r.errors[e]);
    }
    out << "\n";
  }

  constexpr std::size_t w = 10;
  out << "  latency     " << pad_left("p50", w) << pad_left("p90", w) << pad_left("p99", w)
      << pad_left("p99.9", w) << pad_left("max", w) << pad_left("mean", w) << "\n";
  auto row = [&](const std::string& label, const histogram& h) {
    out << "  " << label << std::string(label.size() < 12 ? 12 - label.size() : 0, ' ');
    if (h.count() == 0) {
      out << pad_left("-", w) << "\n";
      return;
    }
    out << pad_left(format_latency(h.percentile(50)), w) << pad_left(format_latency(h.percentile(90)), w)
        << pad_left(format_latency(h.percentile(99)), w) << pad_left(format_latency(h.percentile(99.9)), w)
        << pad_left(format_latency(h.max()), w)
        << pad_left(format_latency(static_cast<std::uint64_t>(h.mean())), w) << "\n";
  };
  row("  all", r.latency);
  if (mixed(cfg)) {
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      if (cfg.mix[k] == 0) continue;
      row("  " + std::string(to_string(static_cast<request_kind>(k))), r.by_kind[k].latency);
    }
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      if (cfg.mix[k] == 0) continue;
      const auto& kr = r.by_kind[k];
      out << "  " << to_string(static_cast<request_kind>(k)) << ": " << grouped(kr.responses)
          << " responses, " << grouped(kr.successes) << " 2xx, "
          << fixed(per_second(kr.responses, r.elapsed), 1) << " req/s\n";
    }
  }
}

void print_json(std::ostream& out, const run_info& info, const load_result& r) {
  const load_config& cfg = *info.config;
  boost::json::object o;
  o["url"] = info.url;
  o["scenario"] = info.scenario;
  o["connections"] = cfg.connections;
  o["threads"] = cfg.threads;
  o["pipeline"] = cfg.pipeline;
  o["mode"] = cfg.rate > 0 ? "open" : "closed";
  if (cfg.rate > 0) {
    o["rate"] = cfg.rate;
  } else {
    o["rate"] = nullptr;
  }
  o["warmup_s"] = seconds(cfg.warmup);
  o["duration_s"] = seconds(r.elapsed);
  o["responses"] = r.responses;
  o["successes"] = r.successes;
  o["throughput_rps"] = per_second(r.responses, r.elapsed);
  o["success_rps"] = per_second(r.successes, r.elapsed);
  boost::json::object status;
  for (std::size_t code = 1; code < r.status.size(); ++code) {
    if (r.status[code] != 0) status[std::to_string(code)] = r.status[code];
  }
  if (r.status[0] != 0) status["other"] = r.status[0];
  o["status"] = std::move(status);
  o["transport_errors"] = r.transport_errors();
  boost::json::object errors;
  for (std::size_t e = 0; e < r.errors.size(); ++e) {
    errors[to_string(static_cast<transport_error>(e))] = r.errors[e];
  }
  o["errors"] = std::move(errors);
  o["reconnects"] = r.reconnects;
  o["latency_us"] = latency_json(r.latency);
  if (mixed(cfg)) {
    boost::json::object by;
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      if (cfg.mix[k] == 0) continue;
      boost::json::object kr;
      kr["weight"] = cfg.mix[k];
      kr["responses"] = r.by_kind[k].responses;
      kr["successes"] = r.by_kind[k].successes;
      kr["throughput_rps"] = per_second(r.by_kind[k].responses, r.elapsed);
      kr["latency_us"] = latency_json(r.by_kind[k].latency);
      by[to_string(static_cast<request_kind>(k))] = std::move(kr);
    }
    o["by_request"] = std::move(by);
  }
  out << boost::json::serialize(o) << "\n";
}

std::string progress_line(const load_progress& now, const load_progress& before) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now.since_start).count();
  std::string line = pad_left(std::to_string(secs) + "s", 5);
  if (now.warming_up) return line + "  warming up";
  const double dt = seconds(now.since_start - before.since_start);
  const std::uint64_t delta = now.responses >= before.responses ? now.responses - before.responses : 0;
  line += "  " +
          pad_left(grouped(static_cast<std::uint64_t>(dt > 0 ? static_cast<double>(delta) / dt : 0)), 9) +
          " req/s  " + grouped(now.responses) + " responses  2xx ";
  line +=
      now.responses > 0
          ? fixed(100.0 * static_cast<double>(now.successes) / static_cast<double>(now.responses), 1) + "%"
          : std::string("-");
  line += "  errors " + grouped(now.errors);
  return line;
}

}  // namespace tokend::bench
