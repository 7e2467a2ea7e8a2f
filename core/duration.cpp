// Duration text; see duration.hpp.
#include "core/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>

namespace tokend::core {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
  struct unit {
    std::string_view suffix;
    std::uint64_t milliseconds;
  };
  // "ms" before "m" and "s", which it ends with.
  constexpr std::array<unit, 5> units = {
      {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};
  constexpr std::uint64_t max_milliseconds = std::uint64_t{max_duration_days} * 86'400'000;
  std::string_view digits = text;
  std::uint64_t scale = 1000;
  for (const unit& u : units) {
    if (digits.size() > u.suffix.size() && digits.ends_with(u.suffix)) {
      digits.remove_suffix(u.suffix.size());
      scale = u.milliseconds;
      break;
    }
  }
  std::uint64_t count = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() ||
      count > max_milliseconds / scale) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(count * scale);
}

}  // namespace tokend::core
