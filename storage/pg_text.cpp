// Text-format values for PostgreSQL; see pg_text.hpp.
#include "storage/pg_text.hpp"

namespace tokend::storage::pg {
namespace {
constexpr char hex_digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

void array_builder::add(std::string_view element) {
  if (text_.size() > 1) text_ += ',';
  text_ += '"';
  for (const char c : element) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
}

std::string bytea_text(const core::key_digest& digest) {
  std::string out = "\\x";
  out.reserve(2 + digest.size() * 2);
  for (const auto b : digest) {
    out += hex_digits[b >> 4];
    out += hex_digits[b & 0xF];
  }
  return out;
}

std::optional<core::key_digest> parse_digest_hex(std::string_view hex) noexcept {
  core::key_digest d{};
  if (hex.size() != d.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return d;
}

}  // namespace tokend::storage::pg
