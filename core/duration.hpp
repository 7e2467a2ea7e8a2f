// The one syntax of durations, for tokend's flags and for `tokend token`'s arguments alike.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace tokend::core {

inline constexpr int max_duration_days = 1000;

// "250ms", "10s", "5m", "2h", "30d", or a bare number of seconds; at most max_duration_days.
// Nullopt for anything else (a sign, a fraction, a space, an unknown unit, a unit alone).
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;

}  // namespace tokend::core
