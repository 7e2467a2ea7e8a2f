// Unit tests for core/description: strict UTF-8 code point counting and the description rules
// (1 to 256 code points of valid UTF-8; no control or bidirectional formatting character; not blank).
#define BOOST_TEST_MODULE core_description_test
#include <boost/test/unit_test.hpp>

#include "core/description.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
const std::string e_acute = "\xC3\xA9";                // U+00E9
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
      "\x80",          // lone continuation byte
      "\xBF",          // lone continuation byte
      "a\x80z",        // continuation between ASCII
      "\xC3",          // truncated 2-byte
      "\xE6\x97",      // truncated 3-byte
      "\xF0\x9F\x98",  // truncated 4-byte
      "\xC3"
      "a",  // lead byte followed by ASCII
      "\xE6\x97"
      "a",                 // 3-byte sequence interrupted
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong U+007F
      "\xE0\x80\x80",      // overlong 3-byte
      "\xE0\x9F\xBF",      // overlong U+07FF
      "\xF0\x80\x80\x80",  // overlong 4-byte
      "\xF0\x8F\xBF\xBF",  // overlong U+FFFF
      "\xED\xA0\x80",      // surrogate U+D800
      "\xED\xBF\xBF",      // surrogate U+DFFF
      "\xF4\x90\x80\x80",  // U+110000
      "\xF5\x80\x80\x80",  // lead byte past U+10FFFF
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

// UTF-8 of one code point, for building test strings.
namespace {
std::string utf8(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}
}  // namespace

// Every C0 and C1 control, DEL and the line/paragraph separators are refused wherever they stand.
BOOST_AUTO_TEST_CASE(control_characters_are_refused) {
  std::vector<std::uint32_t> controls{0x7F, 0x2028, 0x2029};
  for (std::uint32_t cp = 0; cp <= 0x1F; ++cp) controls.push_back(cp);
  for (std::uint32_t cp = 0x80; cp <= 0x9F; ++cp) controls.push_back(cp);
  for (std::uint32_t cp : controls) {
    BOOST_TEST_CONTEXT("U+" << std::hex << cp) {
      const std::string c = utf8(cp);
      BOOST_TEST(length(c) == 1);
      for (const std::string& s :
           {c, "a" + c, c + "a", "team" + c + "key", repeat(c, 3), e_acute + c + emoji}) {
        BOOST_TEST(mentions(problem(s), "control"), "message: " << problem(s));
      }
    }
  }
  // The characters next to the ranges are fine.
  for (std::uint32_t cp : {0x20u, 0x7Eu, 0xA1u, 0x2027u, 0x202Fu}) {
    BOOST_TEST_CONTEXT("U+" << std::hex << cp) { BOOST_TEST(problem("a" + utf8(cp) + "b").empty()); }
  }
}

BOOST_AUTO_TEST_CASE(bidirectional_formatting_is_refused) {
  for (std::uint32_t cp : {0x202Au, 0x202Bu, 0x202Cu, 0x202Du, 0x202Eu, 0x2066u, 0x2067u, 0x2068u, 0x2069u,
                           0x200Eu, 0x200Fu, 0x061Cu}) {
    BOOST_TEST_CONTEXT("U+" << std::hex << cp) {
      const std::string c = utf8(cp);
      for (const std::string& s : {c, "invoice " + c + "fdp.exe", c + nihon, "x" + c}) {
        BOOST_TEST(mentions(problem(s), "bidirectional"), "message: " << problem(s));
      }
    }
  }
  // Right-to-left text itself is welcome: only the invisible direction controls are refused.
  const std::string hebrew = "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D";  // U+05E9 U+05DC U+05D5 U+05DD
  const std::string arabic = "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7";
  BOOST_TEST(problem(hebrew).empty());
  BOOST_TEST(problem("key " + arabic + " 2").empty());
}

BOOST_AUTO_TEST_CASE(blank_descriptions_are_refused) {
  const std::vector<std::uint32_t> blanks{0x20,   0xA0,   0x1680, 0x180E, 0x2000, 0x2005, 0x200A, 0x200B,
                                          0x200C, 0x200D, 0x202F, 0x205F, 0x2060, 0x3000, 0xFEFF};
  for (std::uint32_t cp : blanks) {
    BOOST_TEST_CONTEXT("U+" << std::hex << cp) {
      const std::string c = utf8(cp);
      BOOST_TEST(mentions(problem(c), "blank"), "message: " << problem(c));
      BOOST_TEST(mentions(problem(repeat(c, 5)), "blank"));
      BOOST_TEST(mentions(problem(" " + c + " "), "blank"));
      // With something visible beside it, it is ordinary text.
      BOOST_TEST(problem("a" + c + "b").empty());
      BOOST_TEST(problem(c + emoji).empty());
    }
  }
  BOOST_TEST(mentions(problem(repeat(" ", 256)), "blank"));
  BOOST_TEST(mentions(problem(utf8(0x3000) + " " + utf8(0xFEFF)), "blank"));
  // A tab or a newline among spaces is refused as a control character.
  BOOST_TEST(mentions(problem(" \t "), "control"));
  BOOST_TEST(mentions(problem("\n"), "control"));
}

// What was accepted before stays accepted: printable text of any script, at any length up to 256.
BOOST_AUTO_TEST_CASE(ordinary_text_is_unchanged) {
  for (const std::string& s :
       {std::string("Main app"), std::string(" padded "), std::string("a"), "caf" + e_acute, nihon, emoji,
        "x" + utf8(0x200D) + emoji, repeat("x", 256), repeat(emoji, 256),
        std::string("quote\" back\\slash <tag> & 'q'"), utf8(0xE000) + utf8(0x10FFFF) + utf8(0xFFFD)}) {
    BOOST_TEST(problem(s).empty(), "refused: " << problem(s));
  }
}
