// Text-format values exchanged with PostgreSQL: array literals for batched statements, bytea
// digests, and the parsing of result cells. Pure functions, unit-tested without a database.
#pragma once

#include "core/key.hpp"

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::storage::pg {

// Builds a one-dimensional array literal such as {"a","b\"c"}; every element is quoted and escaped
// so that any text (commas, braces, quotes, backslashes, "NULL") survives.
class array_builder {
 public:
  void add(std::string_view element);
  [[nodiscard]] std::string str() const { return text_ + "}"; }

 private:
  std::string text_ = "{";
};

// An SQL identifier that PostgreSQL reads as exactly `name`, whatever it holds (reserved words,
// capitals, quotes): in double quotes, each double quote doubled.
[[nodiscard]] std::string quote_identifier(std::string_view name);

// "\x<64 hex>": a digest as bytea input text.
[[nodiscard]] std::string bytea_text(const core::key_digest& digest);

// A digest from 64 hex digits (as encode(digest, 'hex') prints it).
[[nodiscard]] std::optional<core::key_digest> parse_digest_hex(std::string_view hex) noexcept;

template <class Integer>
[[nodiscard]] bool parse_integer(std::string_view text, Integer& out) noexcept {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && ptr == text.data() + text.size();
}

// User ids are unsigned 64-bit; PostgreSQL has only signed bigint. The column holds the same 64
// bits read as signed (ids are only compared for equality), so every id round-trips.
[[nodiscard]] inline std::string owner_text(std::uint64_t owner) {
  return std::to_string(static_cast<std::int64_t>(owner));
}
[[nodiscard]] inline bool parse_owner(std::string_view text, std::uint64_t& out) noexcept {
  std::int64_t signed_value = 0;
  if (!parse_integer(text, signed_value)) return false;
  out = static_cast<std::uint64_t>(signed_value);
  return true;
}

// A count or a bound as bigint text; one beyond bigint's range is as good as none, so it is capped.
[[nodiscard]] inline std::string bound_text(std::uint64_t n) {
  constexpr auto most = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return std::to_string(n < most ? n : most);
}

}  // namespace tokend::storage::pg
