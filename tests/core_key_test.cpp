// Unit tests for core/key: key generation, the format/checksum check, the digest and the masked form.
// The reference vectors are computed here with zlib and OpenSSL directly, independently of key.cpp.
#define BOOST_TEST_MODULE core_key_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"

#include <openssl/sha.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>

namespace core = tokend::core;

namespace {

std::string to_hex(const std::uint8_t* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0f];
  }
  return out;
}

// A key built by hand: bytes 0x00..0x1b followed by zlib's CRC32 of them, big-endian.
std::string known_key() {
  std::array<std::uint8_t, core::key_random_bytes + 4> raw{};
  for (std::size_t i = 0; i < core::key_random_bytes; ++i) raw[i] = static_cast<std::uint8_t>(i);
  const auto crc =
      static_cast<std::uint32_t>(::crc32(0L, raw.data(), static_cast<uInt>(core::key_random_bytes)));
  raw[28] = static_cast<std::uint8_t>(crc >> 24);
  raw[29] = static_cast<std::uint8_t>(crc >> 16);
  raw[30] = static_cast<std::uint8_t>(crc >> 8);
  raw[31] = static_cast<std::uint8_t>(crc);
  return to_hex(raw.data(), raw.size());
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

BOOST_AUTO_TEST_CASE(generated_key_has_the_documented_shape) {
  const std::string key = core::generate_key();
  BOOST_TEST(key.size() == core::key_hex_length);
  BOOST_TEST(key.size() == 64u);
  for (char c : key) BOOST_TEST(is_lower_hex(c), "unexpected character '" << c << "' in a generated key");
  BOOST_TEST(core::is_well_formed_key(key));
}

BOOST_AUTO_TEST_CASE(generated_keys_are_accepted_and_distinct) {
  constexpr int n = 10000;
  std::set<std::string> seen;
  for (int i = 0; i < n; ++i) {
    std::string key = core::generate_key();
    BOOST_REQUIRE(core::is_well_formed_key(key));
    seen.insert(std::move(key));
  }
  BOOST_TEST(seen.size() == static_cast<std::size_t>(n));
}

BOOST_AUTO_TEST_CASE(hand_built_key_is_accepted) {
  const std::string key = known_key();
  BOOST_TEST(key.size() == 64u);
  BOOST_TEST(key.substr(0, 56) == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b");
  BOOST_TEST(core::is_well_formed_key(key));
}

BOOST_AUTO_TEST_CASE(any_single_hex_change_is_rejected) {
  // CRC32 detects every single-nibble error, in the random part and in the checksum itself.
  static constexpr char digits[] = "0123456789abcdef";
  for (const std::string& base : {known_key(), core::generate_key()}) {
    BOOST_REQUIRE(core::is_well_formed_key(base));
    for (std::size_t pos = 0; pos < base.size(); ++pos) {
      for (int d = 0; d < 16; ++d) {
        if (digits[d] == base[pos]) continue;
        std::string changed = base;
        changed[pos] = digits[d];
        BOOST_TEST(!core::is_well_formed_key(changed), "accepted " << changed << " (position " << pos << ")");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(uppercase_is_rejected) {
  std::string key = known_key();
  std::string upper = key;
  for (char& c : upper) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  BOOST_REQUIRE(upper != key);
  BOOST_TEST(!core::is_well_formed_key(upper));

  // A single uppercase letter is enough.
  for (std::size_t pos = 0; pos < key.size(); ++pos) {
    if (key[pos] >= 'a' && key[pos] <= 'f') {
      std::string one = key;
      one[pos] = static_cast<char>(one[pos] - 'a' + 'A');
      BOOST_TEST(!core::is_well_formed_key(one), "accepted " << one);
    }
  }
}

BOOST_AUTO_TEST_CASE(wrong_length_is_rejected) {
  const std::string key = known_key();
  BOOST_TEST(!core::is_well_formed_key(""));
  BOOST_TEST(!core::is_well_formed_key(key.substr(0, 63)));
  BOOST_TEST(!core::is_well_formed_key(key + "0"));
  BOOST_TEST(!core::is_well_formed_key(key + key));
  BOOST_TEST(!core::is_well_formed_key(key.substr(0, 56)));  // the random part alone
  BOOST_TEST(!core::is_well_formed_key(" " + key));
  BOOST_TEST(!core::is_well_formed_key(key + "\n"));
}

BOOST_AUTO_TEST_CASE(non_hex_is_rejected) {
  const std::string key = known_key();
  for (char bad : {'g', 'z', 'G', ' ', '-', '.', '/', ':', '@', '`', '\0', '\xff'}) {
    for (std::size_t pos : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
      std::string changed = key;
      changed[pos] = bad;
      BOOST_TEST(!core::is_well_formed_key(changed), "accepted character code "
                                                         << static_cast<int>(static_cast<unsigned char>(bad))
                                                         << " at position " << pos);
    }
  }
  BOOST_TEST(!core::is_well_formed_key(std::string(64, 'x')));
}

BOOST_AUTO_TEST_CASE(digest_is_sha256_of_the_text) {
  // FIPS 180-2 test vectors.
  {
    const core::key_digest d = core::digest_key("abc");
    BOOST_TEST(to_hex(d.data(), d.size()) ==
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
  {
    const core::key_digest d = core::digest_key("");
    BOOST_TEST(to_hex(d.data(), d.size()) ==
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
  // And for a real key, against OpenSSL called directly.
  const std::string key = core::generate_key();
  std::array<unsigned char, SHA256_DIGEST_LENGTH> expected{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), expected.data());
  const core::key_digest d = core::digest_key(key);
  BOOST_TEST(to_hex(d.data(), d.size()) == to_hex(expected.data(), expected.size()));
  BOOST_TEST(core::digest_key(key) == d);
  BOOST_TEST(core::digest_key(core::generate_key()) != d);
}

BOOST_AUTO_TEST_CASE(masked_key_keeps_six_characters) {
  BOOST_TEST(core::masked_key("9fe4f9abc") == "9fe4f9....");
  BOOST_TEST(core::masked_key("9fe4f9") == "9fe4f9....");
  const std::string key = known_key();
  BOOST_TEST(core::masked_key(key) == key.substr(0, core::display_prefix_length) + "....");
  BOOST_TEST(core::masked_key(key).size() == 10u);
}

BOOST_AUTO_TEST_CASE(digest_hash_uses_the_digest_bytes) {
  const core::key_digest a = core::digest_key("a");
  const core::key_digest b = core::digest_key("b");
  const core::key_digest_hash h;
  BOOST_TEST(h(a) == h(a));
  BOOST_TEST(h(a) != h(b));
}
