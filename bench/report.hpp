// What tokend-bench prints: the final report (a human table, or one JSON object) and the live
// progress line. Formatting only; the numbers come from load_result.
#pragma once

#include "bench/load.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace tokend::bench {

// The run's description, echoed in the report next to the numbers it explains.
struct run_info {
  std::string url;
  std::string scenario;  // create | list | authfail | mixed
  const load_config* config = nullptr;
};

void print_table(std::ostream& out, const run_info& info, const load_result& r);
void print_json(std::ostream& out, const run_info& info, const load_result& r);

// One line without a newline, e.g. "  3s  41,152 req/s  123,456 responses  2xx 100.0%  errors 0".
[[nodiscard]] std::string progress_line(const load_progress& now, const load_progress& before);

// The numbers both reports write: `v` with `decimals` digits after the point, a duration in
// seconds, and `n` events over `d` per second (0 for an empty window).
[[nodiscard]] std::string fixed(double v, int decimals);
[[nodiscard]] double seconds(std::chrono::nanoseconds d);
[[nodiscard]] double per_second(std::uint64_t n, std::chrono::nanoseconds d);

// "512ns", "87.3us", "1.25ms", "2.50s".
[[nodiscard]] std::string format_latency(std::uint64_t ns);

// 1234567 -> "1,234,567": request counts are read at a glance.
[[nodiscard]] std::string grouped(std::uint64_t n);

}  // namespace tokend::bench
