// `--rate-limit N/DURATION[:BURST]` of `tokend token`; see token_cli.hpp.
#include "core/duration.hpp"
#include "core/rate_limit.hpp"
#include "server/token_cli.hpp"

#include <charconv>

namespace tokend::server::cli {
namespace {

// A count of requests: digits only, from `min` to core::max_rate_limit.
std::optional<std::uint32_t> count_of(std::string_view text, std::uint32_t min) {
  std::uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  if (value < min || value > core::max_rate_limit) return std::nullopt;
  return value;
}

}  // namespace

core::rate_limit parse_rate_limit(std::string_view flag, std::string_view text) {
  const std::string invalid = "invalid value for " + std::string(flag) + ": '" +
                              std::string(text.substr(0, 31)) + (text.size() > 31 ? "...'" : "'");
  if (text == "0") return core::rate_limit{.limit = 0, .window_seconds = 1, .burst = 0};
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw usage_error(invalid +
                      " (expected N/DURATION[:BURST] such as 100/1s or 6000/1m:200, or 0 for "
                      "no limit)");
  }
  const auto limit = count_of(text.substr(0, slash), 1);
  if (!limit) throw usage_error(invalid + " (the limit is an integer from 1 to 1000000000)");
  std::string_view window = text.substr(slash + 1);
  std::optional<std::uint32_t> burst;
  if (const auto colon = window.find(':'); colon != std::string_view::npos) {
    burst = count_of(window.substr(colon + 1), 1);
    if (!burst) throw usage_error(invalid + " (the burst is an integer from 1 to 1000000000)");
    window = window.substr(0, colon);
  }
  // "100/s" reads as "100/1s".
  std::string duration(window);
  if (!duration.empty() && duration.front() >= 'a' && duration.front() <= 'z') duration.insert(0, "1");
  const auto d = core::parse_duration(duration);
  constexpr std::int64_t max_ms = std::int64_t{core::max_rate_window_seconds} * 1000;
  if (!d || d->count() % 1000 != 0 || d->count() < 1000 || d->count() > max_ms) {
    throw usage_error(invalid +
                      " (the window is a duration of whole seconds from 1s to 1d, such as 1s, "
                      "90s, 1m or 1h)");
  }
  return core::rate_limit{.limit = *limit,
                          .window_seconds = static_cast<std::uint32_t>(d->count() / 1000),
                          .burst = burst.value_or(0)};
}

}  // namespace tokend::server::cli
