// Description validation: strict UTF-8 decoding per RFC 3629.
#include "core/description.hpp"

#include <cstdint>

namespace tokend::core {

std::optional<std::size_t> utf8_length(std::string_view s) noexcept {
  std::size_t count = 0;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  while (i < s.size()) {
    const std::uint8_t b = byte(i);
    std::size_t n;
    std::uint32_t cp;
    if (b < 0x80) { n = 1; cp = b; }
    else if ((b & 0xE0) == 0xC0) { n = 2; cp = b & 0x1F; }
    else if ((b & 0xF0) == 0xE0) { n = 3; cp = b & 0x0F; }
    else if ((b & 0xF8) == 0xF0) { n = 4; cp = b & 0x07; }
    else return std::nullopt;
    if (i + n > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < n; ++k) {
      const std::uint8_t c = byte(i + k);
      if ((c & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    i += n;
    ++count;
  }
  return count;
}

const char* description_problem(std::string_view s) noexcept {
  const auto length = utf8_length(s);
  if (!length) return "Field 'description' must be valid UTF-8";
  if (*length == 0) return "Field 'description' must not be empty";
  if (*length > max_description_chars) return "Field 'description' must be at most 256 characters";
  return nullptr;
}

}  // namespace tokend::core
