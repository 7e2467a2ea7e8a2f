// Bounds of a rate limit; see rate_limit.hpp.
#include "core/rate_limit.hpp"

namespace tokend::core {

std::optional<std::string_view> rate_limit_problem(const rate_limit& limit) noexcept {
  if (limit.limit > max_rate_limit) return "rateLimit.limit must be at most 1000000000";
  if (limit.burst > max_rate_limit) return "rateLimit.burst must be at most 1000000000";
  if (limit.window_seconds < 1 || limit.window_seconds > max_rate_window_seconds) {
    return "rateLimit.window must be between 1 and 86400 seconds";
  }
  return std::nullopt;
}

}  // namespace tokend::core
