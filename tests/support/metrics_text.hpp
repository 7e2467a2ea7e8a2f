// Reading a figure out of a Prometheus text exposition (tokend's /metrics) in tests.
#pragma once

#include <sstream>
#include <string>

namespace tokend::test {

// The sum of every series whose line starts with `prefix` in a metrics text; -1 when there is none.
inline long long metric_in(const std::string& text, const std::string& prefix) {
  long long sum = -1;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(prefix)) continue;
    sum = (sum < 0 ? 0 : sum) + std::stoll(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

}  // namespace tokend::test
