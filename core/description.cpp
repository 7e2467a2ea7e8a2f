// Description validation: strict UTF-8 decoding per RFC 3629, then the character rules.
#include "core/description.hpp"

namespace tokend::core {
namespace {

// Calls `visit(cp)` for each code point of `s` in order; false (after visiting the valid prefix)
// when `s` is not valid UTF-8.
template <class Visit>
bool for_each_code_point(std::string_view s, Visit&& visit) noexcept {
  std::size_t i = 0;
  const std::size_t size = s.size();
  while (i < size) {
    const auto b = static_cast<std::uint8_t>(s[i]);
    if (b < 0x80) {  // ASCII, the common case, without the general decoding below
      visit(std::uint32_t{b});
      ++i;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((b & 0xE0) == 0xC0) {
      n = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4;
      cp = b & 0x07;
    } else
      return false;
    if (i + n > size) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto c = static_cast<std::uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    visit(cp);
    i += n;
  }
  return true;
}

}  // namespace

bool is_control_character(std::uint32_t cp) noexcept {
  return cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

bool is_bidi_control(std::uint32_t cp) noexcept {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F ||
         cp == 0x061C;
}

bool is_blank_character(std::uint32_t cp) noexcept {
  return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200D) ||
         cp == 0x202F || cp == 0x205F || cp == 0x2060 || cp == 0x3000 || cp == 0xFEFF;
}

std::optional<std::size_t> utf8_length(std::string_view s) noexcept {
  std::size_t count = 0;
  if (!for_each_code_point(s, [&](std::uint32_t) { ++count; })) return std::nullopt;
  return count;
}

const char* description_problem(std::string_view s) noexcept {
  std::size_t length = 0;
  bool control = false;
  bool bidi = false;
  bool blank = true;
  const bool valid = for_each_code_point(s, [&](std::uint32_t cp) {
    ++length;
    control = control || is_control_character(cp);
    bidi = bidi || is_bidi_control(cp);
    blank = blank && is_blank_character(cp);
  });
  if (!valid) return "Field 'description' must be valid UTF-8";
  if (length == 0) return "Field 'description' must not be empty";
  if (length > max_description_chars) return "Field 'description' must be at most 256 characters";
  if (control) {
    return "Field 'description' must not contain control characters (U+0000-U+001F, U+007F-U+009F, "
           "U+2028, U+2029)";
  }
  if (bidi) {
    return "Field 'description' must not contain bidirectional formatting characters (U+061C, U+200E, "
           "U+200F, U+202A-U+202E, U+2066-U+2069)";
  }
  if (blank) return "Field 'description' must not be blank (only spaces or invisible characters)";
  return nullptr;
}

}  // namespace tokend::core
