// Fuzz target: the key format check. is_well_formed_key must accept exactly 64 lowercase hex
// characters whose last 8 are the big-endian CRC32 of the first 28 bytes (core/key.hpp), as
// recomputed here with zlib directly; digest_key must be SHA-256 of the text (OpenSSL directly);
// masked_key must keep six characters. The checksum is hard to hit blindly, so the target also
// completes the input's first 56 characters with their correct checksum and checks that candidate.
#include "fuzz_check.hpp"

#include "core/key.hpp"

#include <openssl/sha.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace core = tokend::core;

namespace {

constexpr std::size_t body_hex = 2 * core::key_random_bytes;  // 56: the random part, in hex

bool lower_hex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// The CRC32 of the bytes that `hex` (lowercase, even length) spells, as 8 lowercase hex characters.
std::string crc_hex_of(std::string_view hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  char out[9];
  std::snprintf(out, sizeof out, "%08x", crc);
  return out;
}

// The rule of core/key.hpp, restated.
bool reference_well_formed(std::string_view key) {
  return key.size() == core::key_hex_length && lower_hex(key) &&
         key.substr(body_hex) == crc_hex_of(key.substr(0, body_hex));
}

void check_key(std::string_view key) {
  const bool ours = core::is_well_formed_key(key);
  FUZZ_CHECK(ours == reference_well_formed(key), "is_well_formed_key disagrees with the key format");

  std::array<unsigned char, SHA256_DIGEST_LENGTH> expected{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), expected.data());
  const core::key_digest digest = core::digest_key(key);
  FUZZ_CHECK(std::memcmp(digest.data(), expected.data(), expected.size()) == 0, "digest_key is not SHA-256");

  const std::string masked = core::masked_key(key);
  FUZZ_CHECK(masked.size() == std::min(key.size(), core::display_prefix_length) + 4 &&
                 masked.ends_with("....") &&
                 masked.compare(0, masked.size() - 4, key.substr(0, core::display_prefix_length)) == 0,
             "masked_key is not the six-character prefix and ....");

  if (!ours) return;
  // CRC32 detects every error burst up to 32 bits, so no single changed character may pass.
  std::string typo(key);
  for (std::size_t i = 0; i < typo.size(); ++i) {
    const char original = typo[i];
    for (char c : std::string_view("0123456789abcdef")) {
      if (c == original) continue;
      typo[i] = c;
      FUZZ_CHECK(!core::is_well_formed_key(typo), "a key with one changed character still passes");
    }
    typo[i] = original;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_key(input);
  if (input.size() >= body_hex) {
    const std::string_view random_part = input.substr(0, body_hex);
    if (lower_hex(random_part)) {
      const std::string candidate = std::string(random_part) + crc_hex_of(random_part);
      FUZZ_CHECK(core::is_well_formed_key(candidate), "a key with a correct checksum is refused");
      check_key(candidate);
    }
  }
  return 0;
}
