// Time in tests: waiting for a condition under a deadline (never a sleep on a guess), and elapsed
// milliseconds for messages.
#pragma once

#include <chrono>
#include <thread>

namespace tokend::test {

// Polls `condition` until it holds or `limit` passes; its last answer.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

inline long long ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace tokend::test
