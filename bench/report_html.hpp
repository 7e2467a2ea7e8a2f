// tokend-bench --report FILE.html: one self-contained page for a run (inline SVG and style, no
// script, font or image from anywhere else): throughput over time, the latency percentile spectrum
// on a log scale, status classes and transport errors, and the run's parameters. Never the key.
#pragma once

#include "bench/load.hpp"
#include "bench/report.hpp"

#include <string>

namespace tokend::bench {

// The whole page. Any text equal to the run's keys is replaced, whatever put it there.
[[nodiscard]] std::string html_report(const run_info& info, const load_result& r);

}  // namespace tokend::bench
