// The list cursor codec: a signed (owner, after_id) pair, so a forged cursor cannot reach another
// user's list and the server keeps no state per walk.
#include "core/list_cursor.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::core {
namespace {

constexpr std::uint8_t cursor_version = 0x01;
constexpr std::size_t body_size = 17;  // version, owner, after_id
constexpr std::size_t tag_size = 16;
constexpr std::size_t raw_size = body_size + tag_size;
static_assert(raw_size % 3 == 0 && raw_size / 3 * 4 == list_cursor_length);

constexpr std::string_view tag_context = "tokend-list-cursor";
constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using raw_cursor = std::array<std::uint8_t, raw_size>;

void put_u64(std::uint8_t* out, std::uint64_t value) noexcept {
  for (int i = 7; i >= 0; --i, value >>= 8U) out[i] = static_cast<std::uint8_t>(value & 0xffU);
}

[[nodiscard]] std::uint64_t get_u64(const std::uint8_t* in) noexcept {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8U) | in[i];
  return value;
}

// The tag of the body at the start of `raw`; false only if OpenSSL fails.
[[nodiscard]] bool make_tag(const cursor_secret& secret, const std::uint8_t* body,
                            std::array<std::uint8_t, tag_size>& tag) noexcept {
  std::array<std::uint8_t, tag_context.size() + body_size> message{};
  for (std::size_t i = 0; i < tag_context.size(); ++i) message[i] = static_cast<std::uint8_t>(tag_context[i]);
  for (std::size_t i = 0; i < body_size; ++i) message[tag_context.size() + i] = body[i];
  std::array<std::uint8_t, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), message.data(), message.size(),
           mac.data(), &mac_size) == nullptr ||
      mac_size < tag_size)
    return false;
  for (std::size_t i = 0; i < tag_size; ++i) tag[i] = mac[i];
  return true;
}

[[nodiscard]] int sextet(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

std::string encode_list_cursor(const cursor_secret& secret, list_position position) {
  raw_cursor raw{};
  raw[0] = cursor_version;
  put_u64(&raw[1], position.owner);
  put_u64(&raw[9], position.after_id);
  std::array<std::uint8_t, tag_size> tag{};
  if (!make_tag(secret, raw.data(), tag)) return {};  // never matches: the next request gets a 400
  for (std::size_t i = 0; i < tag_size; ++i) raw[body_size + i] = tag[i];
  std::string out;
  out.reserve(list_cursor_length);
  for (std::size_t i = 0; i < raw.size(); i += 3) {
    const std::uint32_t group =
        (std::uint32_t{raw[i]} << 16U) | (std::uint32_t{raw[i + 1]} << 8U) | raw[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(group >> shift) & 0x3fU]);
  }
  return out;
}

std::optional<list_position> decode_list_cursor(const cursor_secret& secret,
                                                std::string_view cursor) noexcept {
  if (cursor.size() != list_cursor_length) return std::nullopt;
  raw_cursor raw{};
  for (std::size_t i = 0, o = 0; i < cursor.size(); i += 4, o += 3) {
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const int value = sextet(cursor[i + k]);
      if (value < 0) return std::nullopt;
      group = (group << 6U) | static_cast<std::uint32_t>(value);
    }
    raw[o] = static_cast<std::uint8_t>(group >> 16U);
    raw[o + 1] = static_cast<std::uint8_t>((group >> 8U) & 0xffU);
    raw[o + 2] = static_cast<std::uint8_t>(group & 0xffU);
  }
  if (raw[0] != cursor_version) return std::nullopt;
  std::array<std::uint8_t, tag_size> tag{};
  if (!make_tag(secret, raw.data(), tag)) return std::nullopt;
  if (CRYPTO_memcmp(tag.data(), &raw[body_size], tag_size) != 0) return std::nullopt;
  return list_position{get_u64(&raw[1]), get_u64(&raw[9])};
}

}  // namespace tokend::core
