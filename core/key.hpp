// API keys: generation, the format/checksum check, and the SHA-256 digest under which keys are stored.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokend::core {

// A key is 64 lowercase hex characters: 28 random bytes followed by the big-endian CRC32 (IEEE,
// as zlib computes it) of those bytes. The checksum lets us refuse typos and garbage without a lookup.
inline constexpr std::size_t key_random_bytes = 28;
inline constexpr std::size_t key_hex_length = 64;
inline constexpr std::size_t display_prefix_length = 6;

using key_digest = std::array<std::uint8_t, 32>;

// A fresh key from OpenSSL's CSPRNG. Throws std::runtime_error only if the CSPRNG fails.
[[nodiscard]] std::string generate_key();

// True when `key` has the exact shape of a key and its checksum matches.
[[nodiscard]] bool is_well_formed_key(std::string_view key) noexcept;

// SHA-256 of the key's text: the only form in which a key is stored or compared.
[[nodiscard]] key_digest digest_key(std::string_view key) noexcept;

// The masked form shown in lists: the first six characters followed by "....".
[[nodiscard]] std::string masked_key(std::string_view display_prefix);

struct key_digest_hash {
  std::size_t operator()(const key_digest& d) const noexcept {
    // The digest is uniformly random already; its first bytes are a perfect hash.
    std::size_t h;
    static_assert(sizeof(h) <= sizeof(key_digest));
    __builtin_memcpy(&h, d.data(), sizeof(h));
    return h;
  }
};

}  // namespace tokend::core
