// List cursors: the opaque, signed position a client passes back to read the next page of a list.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::core {

using cursor_secret = std::array<std::uint8_t, 32>;

// Where the next page starts: after `after_id` in `owner`'s list.
struct list_position {
  std::uint64_t owner = 0;
  std::uint64_t after_id = 0;
  friend bool operator==(const list_position&, const list_position&) = default;
};

// base64url without padding of: version 0x01 | owner u64 BE | after_id u64 BE | tag (16 bytes),
// the tag being the first 16 bytes of HMAC-SHA256(secret, "tokend-list-cursor" | the 17 bytes
// before it). 33 bytes make exactly 44 characters.
inline constexpr std::size_t list_cursor_length = 44;

[[nodiscard]] std::string encode_list_cursor(const cursor_secret& secret, list_position position);

// The position a cursor made with `secret` names, or nullopt for anything else: a wrong length,
// alphabet or version, or a tag that does not match (compared in constant time).
[[nodiscard]] std::optional<list_position> decode_list_cursor(const cursor_secret& secret,
                                                              std::string_view cursor) noexcept;

}  // namespace tokend::core
