// tokend-bench's command line: every flag, its checks, and the --help text. Apart from main() so
// that the rules are unit-tested (tests/bench_cli_test.cpp).
#pragma once

#include "bench/load.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace tokend::bench {

extern const std::string_view help_text;

// A mistake on the command line; main() prints it and exits with status 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct options {
  load_config cfg;
  std::string url = "http://127.0.0.1:8080";
  std::string scenario = "list";
  std::string report;  // --report: where the HTML page goes, empty for none
  bool json = false;
  bool help = false;
};

// The options of argv[1..argc); throws usage_error.
[[nodiscard]] options parse_args(int argc, const char* const* argv);

}  // namespace tokend::bench
