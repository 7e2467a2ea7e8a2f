// Rules for a token's description: 1 to 256 characters (Unicode code points) of valid UTF-8, that
// shows as what it is wherever it is printed (a dashboard, a terminal, a log viewer):
//   - no control character: C0 (U+0000-U+001F, tab and line feed included), DEL (U+007F), C1
//     (U+0080-U+009F), nor the line and paragraph separators U+2028 and U+2029;
//   - no bidirectional formatting character: the embeddings and overrides U+202A-U+202E, the
//     isolates U+2066-U+2069, and the marks U+200E, U+200F and U+061C (they reorder what is shown);
//   - not blank: at least one character that is neither Unicode White_Space (U+0020, U+00A0,
//     U+1680, U+2000-U+200A, U+202F, U+205F, U+3000; the others are controls) nor an invisible
//     filler (U+180E, U+200B-U+200D, U+2060, U+FEFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tokend::core {

inline constexpr std::size_t max_description_chars = 256;

// Number of code points when `s` is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF).
[[nodiscard]] std::optional<std::size_t> utf8_length(std::string_view s) noexcept;

// Why a description is refused, or nullptr when it is acceptable.
[[nodiscard]] const char* description_problem(std::string_view s) noexcept;

// The classes of code point the rules above refuse or do not count as content.
[[nodiscard]] bool is_control_character(std::uint32_t cp) noexcept;
[[nodiscard]] bool is_bidi_control(std::uint32_t cp) noexcept;
[[nodiscard]] bool is_blank_character(std::uint32_t cp) noexcept;

}  // namespace tokend::core
