// Unit tests of core::list_cursor: the exact format, and that anything but an unaltered cursor made
// with the same secret is refused.
#define BOOST_TEST_MODULE core_list_cursor_test
#include <boost/test/unit_test.hpp>

#include "core/list_cursor.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using tokend::core::cursor_secret;
using tokend::core::decode_list_cursor;
using tokend::core::encode_list_cursor;
using tokend::core::list_cursor_length;
using tokend::core::list_position;

namespace {

cursor_secret secret_of(std::uint8_t seed) {
  cursor_secret s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(seed + i * 7);
  return s;
}

// The cursor built independently of the codec, from the format's definition: OpenSSL's base64
// with the URL alphabet and no padding, and its one-shot HMAC.
std::string reference_cursor(const cursor_secret& secret, std::uint64_t owner, std::uint64_t after_id,
                             std::uint8_t version = 0x01) {
  std::vector<std::uint8_t> raw{version};
  for (int i = 7; i >= 0; --i) raw.push_back(static_cast<std::uint8_t>(owner >> (8 * i)));
  for (int i = 7; i >= 0; --i) raw.push_back(static_cast<std::uint8_t>(after_id >> (8 * i)));
  std::string message = "tokend-list-cursor";
  message.append(raw.begin(), raw.end());
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &size);
  raw.insert(raw.end(), mac.begin(), mac.begin() + 16);
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw.data(), static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_and_exact_format) {
  const cursor_secret secret = secret_of(3);
  const std::vector<list_position> positions{{0, 0},
                                             {3, 120},
                                             {1, std::numeric_limits<std::uint64_t>::max()},
                                             {std::numeric_limits<std::uint64_t>::max(), 1},
                                             {0x0102030405060708ULL, 0x1112131415161718ULL}};
  for (const list_position& p : positions) {
    const std::string cursor = encode_list_cursor(secret, p);
    BOOST_TEST(cursor.size() == list_cursor_length);
    BOOST_TEST(cursor == reference_cursor(secret, p.owner, p.after_id));
    const auto back = decode_list_cursor(secret, cursor);
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST(back->owner == p.owner);
    BOOST_TEST(back->after_id == p.after_id);
  }
}

// A known answer, computed apart from OpenSSL (Python's hmac and base64): the format is fixed, since
// cursors stay valid across restarts and every instance of a store must read the others'.
BOOST_AUTO_TEST_CASE(known_answer) {
  cursor_secret secret{};
  secret[0] = 1;
  BOOST_TEST(encode_list_cursor(secret, {3, 120}) == "AQAAAAAAAAADAAAAAAAAAHgS4PvMjX83kbP22k_LN58V");
}

BOOST_AUTO_TEST_CASE(every_single_byte_change_is_refused) {
  const cursor_secret secret = secret_of(9);
  const std::string cursor = encode_list_cursor(secret, {42, 123456});
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < cursor.size(); ++i) {
    for (const char c : alphabet) {
      if (c == cursor[i]) continue;
      std::string forged = cursor;
      forged[i] = c;
      // The last character carries 6 bits of tag only; every other byte is covered in full.
      BOOST_TEST(!decode_list_cursor(secret, forged).has_value(), "position " << i << " as " << c);
    }
  }
}

BOOST_AUTO_TEST_CASE(every_truncation_and_extension_is_refused) {
  const cursor_secret secret = secret_of(1);
  const std::string cursor = encode_list_cursor(secret, {7, 99});
  for (std::size_t n = 0; n < cursor.size(); ++n)
    BOOST_TEST(!decode_list_cursor(secret, cursor.substr(0, n)).has_value(), "length " << n);
  BOOST_TEST(!decode_list_cursor(secret, cursor + "A").has_value());
  BOOST_TEST(!decode_list_cursor(secret, cursor + cursor).has_value());
  BOOST_TEST(!decode_list_cursor(secret, cursor.substr(1) + cursor[0]).has_value());
}

BOOST_AUTO_TEST_CASE(other_alphabets_padding_and_versions_are_refused) {
  const cursor_secret secret = secret_of(5);
  const std::string cursor = encode_list_cursor(secret, {7, 99});
  for (const char bad : std::string("+/=.~ %\t\n") + std::string(1, '\0') + "\xff") {
    std::string forged = cursor;
    forged[10] = bad;
    BOOST_TEST(!decode_list_cursor(secret, forged).has_value(), "character " << int(bad));
  }
  // Standard base64 of the same bytes is refused when it differs (the URL alphabet only).
  std::string standard = cursor;
  for (char& c : standard) c = c == '-' ? '+' : c == '_' ? '/' : c;
  if (standard != cursor) BOOST_TEST(!decode_list_cursor(secret, standard).has_value());
  BOOST_TEST(!decode_list_cursor(secret, cursor.substr(0, 43) + "=").has_value());
  BOOST_TEST(!decode_list_cursor(secret, cursor + "==").has_value());
  BOOST_TEST(!decode_list_cursor(secret, "").has_value());
  BOOST_TEST(!decode_list_cursor(secret, std::string(44, 'A')).has_value());
  // A correctly signed cursor of another version is refused.
  BOOST_TEST(reference_cursor(secret, 7, 99) == cursor);
  for (const std::uint8_t version : {0x00, 0x02, 0x81, 0xff})
    BOOST_TEST(!decode_list_cursor(secret, reference_cursor(secret, 7, 99, version)).has_value());
}

BOOST_AUTO_TEST_CASE(another_secret_is_refused) {
  const std::string cursor = encode_list_cursor(secret_of(1), {7, 99});
  BOOST_TEST(decode_list_cursor(secret_of(1), cursor).has_value());
  BOOST_TEST(!decode_list_cursor(secret_of(2), cursor).has_value());
  cursor_secret nearly = secret_of(1);
  nearly[31] ^= 0x01U;
  BOOST_TEST(!decode_list_cursor(nearly, cursor).has_value());
  BOOST_TEST(!decode_list_cursor(cursor_secret{}, cursor).has_value());
}
