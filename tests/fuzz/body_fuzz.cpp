// Fuzz target: request bodies as the router reads them. The create and delete body parsers, the
// description rules (cross-checked against an independent RFC 3629 decoder), the JSON round trip
// of a description through the response body, and the Content-Type check.
#include "fuzz_check.hpp"

#include "core/description.hpp"
#include "core/key.hpp"
#include "server/api_request.hpp"
#include "server/api_response.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace core = tokend::core;
namespace server = tokend::server;

namespace {

// Code points in `s` when it is valid UTF-8, by the well-formed byte sequences table of RFC 3629
// section 4: written differently from core::utf8_length on purpose, so the two can disagree.
std::optional<std::size_t> reference_utf8_length(std::string_view s) {
  const auto in = [](std::uint8_t b, std::uint8_t lo, std::uint8_t hi) { return b >= lo && b <= hi; };
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto at = [&](std::size_t k) -> int {
      return i + k < s.size() ? static_cast<std::uint8_t>(s[i + k]) : -1;
    };
    const auto b0 = static_cast<std::uint8_t>(s[i]);
    const auto tail = [&](std::size_t k, std::uint8_t lo, std::uint8_t hi) {
      const int b = at(k);
      return b >= 0 && in(static_cast<std::uint8_t>(b), lo, hi);
    };
    std::size_t n = 0;
    if (b0 <= 0x7F) n = 1;
    else if (in(b0, 0xC2, 0xDF) && tail(1, 0x80, 0xBF)) n = 2;
    else if (b0 == 0xE0 && tail(1, 0xA0, 0xBF) && tail(2, 0x80, 0xBF)) n = 3;
    else if ((in(b0, 0xE1, 0xEC) || in(b0, 0xEE, 0xEF)) && tail(1, 0x80, 0xBF) && tail(2, 0x80, 0xBF)) n = 3;
    else if (b0 == 0xED && tail(1, 0x80, 0x9F) && tail(2, 0x80, 0xBF)) n = 3;
    else if (b0 == 0xF0 && tail(1, 0x90, 0xBF) && tail(2, 0x80, 0xBF) && tail(3, 0x80, 0xBF)) n = 4;
    else if (in(b0, 0xF1, 0xF3) && tail(1, 0x80, 0xBF) && tail(2, 0x80, 0xBF) && tail(3, 0x80, 0xBF)) n = 4;
    else if (b0 == 0xF4 && tail(1, 0x80, 0x8F) && tail(2, 0x80, 0xBF) && tail(3, 0x80, 0xBF)) n = 4;
    else return std::nullopt;
    i += n;
    ++count;
  }
  return count;
}

// A description the service accepted must come back unchanged in the create response: the JSON
// serializer escapes whatever a client managed to put in it.
void check_round_trip(const std::string& description) {
  const std::string key(core::key_hex_length, 'a');  // shape only: the body builder never checks it
  const server::token_service::created made{key, core::make_token_record(key, 1, description, "admin", 0)};
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(server::created_body(made), ec);
  FUZZ_CHECK(!ec && v.is_object(), "created_body is not a JSON object");
  const auto* token = v.as_object().if_contains("token");
  FUZZ_CHECK(token && token->is_object(), "created_body has no token object");
  const auto* back = token->as_object().if_contains("description");
  FUZZ_CHECK(back && back->is_string(), "created_body has no description string");
  FUZZ_CHECK(std::string_view(back->as_string()) == description, "description changed on its way through JSON");
}

void check_create(std::string_view body) {
  const auto parsed = server::parse_create_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(), "create: a refusal must say why, and only a refusal");
  if (!parsed) return;
  FUZZ_CHECK(parsed.value->type == "admin", "create: accepted a type other than admin");
  const std::string& d = parsed.value->description;
  FUZZ_CHECK(core::description_problem(d) == nullptr, "create: accepted a description the rules refuse");
  const auto length = reference_utf8_length(d);
  FUZZ_CHECK(length && *length >= 1 && *length <= core::max_description_chars,
             "create: accepted description is not 1..256 code points of valid UTF-8");
  check_round_trip(d);
}

void check_delete(std::string_view body) {
  const auto parsed = server::parse_delete_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(), "delete: a refusal must say why, and only a refusal");
  if (parsed) FUZZ_CHECK(!parsed.value->empty(), "delete: accepted an empty token");
}

void check_description_rules(std::string_view raw) {
  const auto ours = core::utf8_length(raw);
  FUZZ_CHECK(ours == reference_utf8_length(raw), "utf8_length disagrees with the RFC 3629 table");
  const char* problem = core::description_problem(raw);
  FUZZ_CHECK((problem == nullptr) == (ours && *ours >= 1 && *ours <= core::max_description_chars),
             "description_problem disagrees with utf8_length");
  if (!problem) check_round_trip(std::string(raw));
}

void check_content_type(std::string_view raw) {
  if (!server::is_json_content_type(raw)) return;
  std::string media(raw.substr(0, raw.find(';')));
  for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto first = media.find_first_not_of(" \t");
  const auto last = media.find_last_not_of(" \t");
  FUZZ_CHECK(first != std::string::npos, "content type: accepted a blank media type");
  media = media.substr(first, last - first + 1);
  FUZZ_CHECK(media.rfind("application/", 0) == 0 && media.size() >= 16 && media.ends_with("json"),
             "content type: accepted something that is not application/json or application/*+json");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_create(input);
  check_delete(input);
  check_description_rules(input);
  check_content_type(input);
  return 0;
}
