// Rules for a token's description: 1 to 256 characters (Unicode code points) of valid UTF-8.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace tokend::core {

inline constexpr std::size_t max_description_chars = 256;

// Number of code points when `s` is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF).
[[nodiscard]] std::optional<std::size_t> utf8_length(std::string_view s) noexcept;

// Why a description is refused, or nullptr when it is acceptable.
[[nodiscard]] const char* description_problem(std::string_view s) noexcept;

}  // namespace tokend::core
