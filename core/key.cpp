// Key generation and checking; see key.hpp for the format.
#include "core/key.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <stdexcept>

namespace tokend::core {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is refused: keys are canonical lowercase
}

std::uint32_t crc32_of(const std::uint8_t* data, std::size_t n) noexcept {
  return static_cast<std::uint32_t>(::crc32(0L, data, static_cast<uInt>(n)));
}

}  // namespace

std::string generate_key() {
  std::array<std::uint8_t, key_random_bytes + 4> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(key_random_bytes)) != 1) {
    throw std::runtime_error("CSPRNG failure while generating a key");
  }
  const std::uint32_t crc = crc32_of(raw.data(), key_random_bytes);
  for (int i = 0; i < 4; ++i) {
    raw[key_random_bytes + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  }
  std::string key(key_hex_length, '0');
  for (std::size_t i = 0; i < raw.size(); ++i) {
    key[2 * i] = hex_digits[raw[i] >> 4];
    key[2 * i + 1] = hex_digits[raw[i] & 0x0f];
  }
  return key;
}

bool is_well_formed_key(std::string_view key) noexcept {
  if (key.size() != key_hex_length) return false;
  std::array<std::uint8_t, key_random_bytes + 4> raw{};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const int hi = hex_value(key[2 * i]);
    const int lo = hex_value(key[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  std::uint32_t stored = 0;
  for (std::size_t i = key_random_bytes; i < raw.size(); ++i) stored = (stored << 8) | raw[i];
  return stored == crc32_of(raw.data(), key_random_bytes);
}

key_digest digest_key(std::string_view key) noexcept {
  key_digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
  return d;
}

std::string masked_key(std::string_view display_prefix) {
  std::string out(display_prefix.substr(0, display_prefix_length));
  out += "....";
  return out;
}

}  // namespace tokend::core
