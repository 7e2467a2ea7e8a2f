// tokend-bench: an HTTP/1.1 load generator for tokend's /api/v2/tokens and /verify. This file holds
// main(); the command line is in cli.cpp, the load in load.cpp, the output in report.cpp and
// report_html.cpp.
#include "bench/cli.hpp"
#include "bench/load.hpp"
#include "bench/report.hpp"
#include "bench/report_html.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iostream>

namespace {

using tokend::bench::options;
using tokend::bench::usage_error;

// Many connections need many descriptors: take the hard limit, quietly, if the soft one is lower.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = tokend::bench::parse_args(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "tokend-bench: " << e.what() << " (see --help)\n";
    return 2;
  }
  if (o.help) {
    std::cout << tokend::bench::help_text;
    return 0;
  }
  raise_fd_limit();

  // Opened before the load, so an unwritable path fails at once rather than after the run.
  std::ofstream report;
  if (!o.report.empty()) {
    report.open(o.report, std::ios::binary | std::ios::trunc);
    if (!report) {
      std::cerr << "tokend-bench: cannot write the report to " << o.report << "\n";
      return 1;
    }
  }

  try {
    if (auto err = tokend::bench::resolve_target(o.cfg)) {
      std::cerr << "tokend-bench: " << *err << "\n";
      return 1;
    }
    if (auto err = tokend::bench::probe_connect(o.cfg)) {
      std::cerr << "tokend-bench: " << *err << "\n";
      return 1;
    }

    const bool live = isatty(STDERR_FILENO) == 1;
    tokend::bench::load_progress before;
    std::function<void(const tokend::bench::load_progress&)> on_progress;
    if (live) {
      on_progress = [&before](const tokend::bench::load_progress& p) {
        std::cerr << "\r" << tokend::bench::progress_line(p, before) << "\033[K" << std::flush;
        before = p;
      };
    }
    const auto result = tokend::bench::run_load(o.cfg, on_progress);
    if (live) std::cerr << "\r\033[K" << std::flush;

    const tokend::bench::run_info info{o.url, o.scenario, &o.cfg};
    if (o.json) {
      tokend::bench::print_json(std::cout, info, result);
    } else {
      tokend::bench::print_table(std::cout, info, result);
    }
    if (report.is_open()) {
      report << tokend::bench::html_report(info, result);
      report.close();
      if (!report) {
        std::cerr << "tokend-bench: cannot write the report to " << o.report << "\n";
        return 1;
      }
    }
    if (!result.ever_connected) {
      std::cerr << "tokend-bench: no connection to " << o.cfg.host_header << " succeeded\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tokend-bench: " << e.what() << "\n";
    return 1;
  }
}
