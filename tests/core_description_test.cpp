// Unit tests for core/description: strict UTF-8 code point counting and the description rules
// (1 to 256 code points of valid UTF-8).
#define BOOST_TEST_MODULE core_description_test
#include <boost/test/unit_test.hpp>

#include "core/description.hpp"

#include <string>
#include <string_view>

namespace core = tokend::core;

namespace {

// utf8_length as a printable number: -1 when the text is not valid UTF-8.
long length(std::string_view s) {
  const auto n = core::utf8_length(s);
  return n ? static_cast<long>(*n) : -1;
}

// description_problem as a printable string: empty when the description is acceptable.
std::string problem(std::string_view s) {
  const char* p = core::description_problem(s);
  return p ? std::string(p) : std::string();
}

// The messages' wording belongs to the API layer; the tests only pin what each one is about.
bool mentions(const std::string& text, std::string_view word) { return text.find(word) != std::string::npos; }

std::string repeat(std::string_view unit, std::size_t n) {
  std::string out;
  out.reserve(unit.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += unit;
  return out;
}

// Built from explicit bytes so the test does not depend on the source file's encoding.
const std::string e_acute = "\xC3\xA9";               // U+00E9
const std::string nihon = "\xE6\x97\xA5\xE6\x9C\xAC";  // U+65E5 U+672C
const std::string emoji = "\xF0\x9F\x98\x80";          // U+1F600

}  // namespace

BOOST_AUTO_TEST_CASE(ascii_counts_bytes) {
  BOOST_TEST(length("") == 0);
  BOOST_TEST(length("a") == 1);
  BOOST_TEST(length("Main app") == 8);
  BOOST_TEST(length(std::string_view("a\0b", 3)) == 3);
  BOOST_TEST(length("\x7F") == 1);
  BOOST_TEST(problem("Main app").empty());
}

BOOST_AUTO_TEST_CASE(multi_byte_characters_count_once) {
  BOOST_TEST(length(e_acute) == 1);
  BOOST_TEST(length("caf" + e_acute) == 4);
  BOOST_TEST(length(nihon) == 2);
  BOOST_TEST(length(emoji) == 1);
  BOOST_TEST(length("a" + e_acute + nihon + emoji + "z") == 6);
  BOOST_TEST(problem(emoji).empty());
  BOOST_TEST(problem(nihon).empty());
}

BOOST_AUTO_TEST_CASE(boundary_code_points_are_accepted) {
  BOOST_TEST(length("\xC2\x80") == 1);          // U+0080
  BOOST_TEST(length("\xDF\xBF") == 1);          // U+07FF
  BOOST_TEST(length("\xE0\xA0\x80") == 1);      // U+0800
  BOOST_TEST(length("\xED\x9F\xBF") == 1);      // U+D7FF
  BOOST_TEST(length("\xEE\x80\x80") == 1);      // U+E000
  BOOST_TEST(length("\xEF\xBF\xBF") == 1);      // U+FFFF
  BOOST_TEST(length("\xF0\x90\x80\x80") == 1);  // U+10000
  BOOST_TEST(length("\xF4\x8F\xBF\xBF") == 1);  // U+10FFFF
}

BOOST_AUTO_TEST_CASE(length_limits_count_code_points) {
  BOOST_TEST(problem(repeat("x", 256)).empty());
  BOOST_TEST(!problem(repeat("x", 257)).empty());

  const std::string max4 = repeat(emoji, 256);  // 1024 bytes, 256 code points
  BOOST_TEST(max4.size() == 1024u);
  BOOST_TEST(length(max4) == 256);
  BOOST_TEST(problem(max4).empty());

  const std::string over4 = repeat(emoji, 257);
  BOOST_TEST(length(over4) == 257);
  BOOST_TEST(!problem(over4).empty());

  BOOST_TEST(problem(repeat(e_acute, 256)).empty());
  BOOST_TEST(!problem(repeat(e_acute, 257)).empty());
}

BOOST_AUTO_TEST_CASE(empty_is_refused) {
  BOOST_TEST(mentions(problem(""), "empty"), "message: " << problem(""));
}

BOOST_AUTO_TEST_CASE(invalid_sequences_are_refused) {
  const std::string_view bad[] = {
      "\x80",                  // lone continuation byte
      "\xBF",                  // lone continuation byte
      "a\x80z",                // continuation between ASCII
      "\xC3",                  // truncated 2-byte
      "\xE6\x97",              // truncated 3-byte
      "\xF0\x9F\x98",          // truncated 4-byte
      "\xC3" "a",              // lead byte followed by ASCII
      "\xE6\x97" "a",          // 3-byte sequence interrupted
      "\xC0\x80",              // overlong NUL
      "\xC1\xBF",              // overlong U+007F
      "\xE0\x80\x80",          // overlong 3-byte
      "\xE0\x9F\xBF",          // overlong U+07FF
      "\xF0\x80\x80\x80",      // overlong 4-byte
      "\xF0\x8F\xBF\xBF",      // overlong U+FFFF
      "\xED\xA0\x80",          // surrogate U+D800
      "\xED\xBF\xBF",          // surrogate U+DFFF
      "\xF4\x90\x80\x80",      // U+110000
      "\xF5\x80\x80\x80",      // lead byte past U+10FFFF
      "\xF7\xBF\xBF\xBF",
      "\xF8\x88\x80\x80\x80",  // 5-byte form
      "\xFC\x84\x80\x80\x80\x80",
      "\xFE",
      "\xFF",
  };
  for (std::string_view s : bad) {
    BOOST_TEST(length(s) == -1, "accepted " << s.size() << "-byte invalid sequence");
    BOOST_TEST(mentions(problem(s), "UTF-8"), "message: " << problem(s));
    // Still refused when surrounded by valid text.
    const std::string wrapped = "ok " + std::string(s) + " " + emoji;
    BOOST_TEST(length(wrapped) == -1);
    BOOST_TEST(!problem(wrapped).empty());
  }
}

BOOST_AUTO_TEST_CASE(too_long_message) {
  BOOST_TEST(mentions(problem(repeat("x", 300)), "256"), "message: " << problem(repeat("x", 300)));
  BOOST_TEST(mentions(problem(repeat(emoji, 257)), "256"), "message: " << problem(repeat(emoji, 257)));
}
