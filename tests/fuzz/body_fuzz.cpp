// Fuzz target: request bodies as the router reads them. The create, delete and roll body parsers (no
// member named twice, checked against a plain scanner), the description rules (cross-checked
// against an independent RFC 3629 decoder and tables of the refused characters), the JSON round
// trip of a description through the response body, and the Content-Type check (JSON, no charset
// but UTF-8).
#include "fuzz_check.hpp"

#include "core/description.hpp"
#include "core/key.hpp"
#include "server/api_parsing.hpp"
#include "server/api_response.hpp"
#include "server/json_members.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace core = tokend::core;
namespace server = tokend::server;

namespace {

// The code points of `s` when it is valid UTF-8, by the well-formed byte sequences table of RFC 3629
// section 4: written differently from core::utf8_length on purpose, so the two can disagree.
std::optional<std::vector<std::uint32_t>> reference_code_points(std::string_view s) {
  const auto in = [](std::uint8_t b, std::uint8_t lo, std::uint8_t hi) { return b >= lo && b <= hi; };
  std::vector<std::uint32_t> out;
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
    if (b0 <= 0x7F)
      n = 1;
    else if (in(b0, 0xC2, 0xDF) && tail(1, 0x80, 0xBF))
      n = 2;
    else if (b0 == 0xE0 && tail(1, 0xA0, 0xBF) && tail(2, 0x80, 0xBF))
      n = 3;
    else if ((in(b0, 0xE1, 0xEC) || in(b0, 0xEE, 0xEF)) && tail(1, 0x80, 0xBF) && tail(2, 0x80, 0xBF))
      n = 3;
    else if (b0 == 0xED && tail(1, 0x80, 0x9F) && tail(2, 0x80, 0xBF))
      n = 3;
    else if (b0 == 0xF0 && tail(1, 0x90, 0xBF) && tail(2, 0x80, 0xBF) && tail(3, 0x80, 0xBF))
      n = 4;
    else if (in(b0, 0xF1, 0xF3) && tail(1, 0x80, 0xBF) && tail(2, 0x80, 0xBF) && tail(3, 0x80, 0xBF))
      n = 4;
    else if (b0 == 0xF4 && tail(1, 0x80, 0x8F) && tail(2, 0x80, 0xBF) && tail(3, 0x80, 0xBF))
      n = 4;
    else
      return std::nullopt;
    static constexpr std::uint8_t lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    std::uint32_t cp = b0 & lead_mask[n];
    for (std::size_t k = 1; k < n; ++k) cp = cp * 64 + (static_cast<std::uint8_t>(s[i + k]) - 0x80u);
    out.push_back(cp);
    i += n;
  }
  return out;
}

std::optional<std::size_t> reference_utf8_length(std::string_view s) {
  const auto cps = reference_code_points(s);
  if (!cps) return std::nullopt;
  return cps->size();
}

struct range {
  std::uint32_t lo, hi;
};

bool in_ranges(std::uint32_t cp, std::initializer_list<range> ranges) {
  for (const auto& r : ranges) {
    if (cp >= r.lo && cp <= r.hi) return true;
  }
  return false;
}

// The description rules as tables: 1..256 code points of valid UTF-8, none of them a control
// (C0, DEL, C1, U+2028/9) or a bidirectional format character, and not all of them blank.
bool reference_description_ok(std::string_view s) {
  const auto cps = reference_code_points(s);
  if (!cps || cps->empty() || cps->size() > core::max_description_chars) return false;
  bool visible = false;
  for (std::uint32_t cp : *cps) {
    if (in_ranges(cp, {{0x00, 0x1F}, {0x7F, 0x9F}, {0x2028, 0x2029}})) return false;
    if (in_ranges(cp, {{0x061C, 0x061C}, {0x200E, 0x200F}, {0x202A, 0x202E}, {0x2066, 0x2069}})) return false;
    visible = visible || !in_ranges(cp, {{0x20, 0x20},
                                         {0xA0, 0xA0},
                                         {0x1680, 0x1680},
                                         {0x180E, 0x180E},
                                         {0x2000, 0x200D},
                                         {0x202F, 0x202F},
                                         {0x205F, 0x2060},
                                         {0x3000, 0x3000},
                                         {0xFEFF, 0xFEFF}});
  }
  return visible;
}

// Whether the valid JSON text `text` names a member twice in one object: a plain character scanner
// that unescapes each name with boost::json, written apart from server::has_duplicate_members.
bool reference_has_duplicates(std::string_view text) {
  struct level {
    bool object;
    bool want_name;
    std::set<std::string> names;
  };
  std::vector<level> open;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      std::size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      FUZZ_CHECK(j < text.size(), "reference scanner: unterminated string in valid JSON");
      if (!open.empty() && open.back().object && open.back().want_name) {
        boost::system::error_code ec;
        const auto name = boost::json::parse(text.substr(i, j - i + 1), ec);
        FUZZ_CHECK(!ec && name.is_string(), "reference scanner: a member name that is not a string");
        if (!open.back().names.insert(std::string(name.as_string())).second) return true;
        open.back().want_name = false;
      }
      i = j;
    } else if (c == '{' || c == '[') {
      open.push_back({c == '{', c == '{', {}});
    } else if (c == '}' || c == ']') {
      FUZZ_CHECK(!open.empty(), "reference scanner: unbalanced valid JSON");
      open.pop_back();
    } else if (c == ',' && !open.empty() && open.back().object) {
      open.back().want_name = true;
    }
  }
  return false;
}

// Duplicate detection agrees with the reference on valid JSON, and a body that is a JSON object
// naming a member twice is refused by both parsers, saying so.
void check_duplicates(std::string_view body) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec) return;
  const bool duplicate = reference_has_duplicates(body);
  FUZZ_CHECK(server::has_duplicate_members(body) == duplicate,
             "has_duplicate_members disagrees with the scanner");
  if (!duplicate || !v.is_object()) return;
  const auto create = server::parse_create_body(body);
  FUZZ_CHECK(!create && create.problem.find("twice") != std::string::npos,
             "create: accepted a repeated member");
  const auto del = server::parse_delete_body(body);
  FUZZ_CHECK(!del && del.problem.find("twice") != std::string::npos, "delete: accepted a repeated member");
  const auto roll = server::parse_roll_body(body);
  FUZZ_CHECK(!roll && roll.problem.find("twice") != std::string::npos, "roll: accepted a repeated member");
  const auto limit = server::parse_rate_limit_body(body);
  FUZZ_CHECK(!limit && limit.problem.find("twice") != std::string::npos,
             "rate limit: accepted a repeated member");
  const auto quota = server::parse_quota_body(body);
  FUZZ_CHECK(!quota && quota.problem.find("twice") != std::string::npos, "quota: accepted a repeated member");
}

// PUT /api/v2/tokens/quota: exactly userId (1 to 2^53) and maxTokens (null, or 0 to 1e9), taken
// as the body has them.
void check_quota(std::string_view body) {
  const auto parsed = server::parse_quota_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(), "quota: a refusal must say why, and only a refusal");
  if (!parsed) return;
  const auto v = boost::json::parse(body).as_object();
  FUZZ_CHECK(v.size() == 2 && v.contains("userId") && v.contains("maxTokens"),
             "quota: accepted other members");
  const auto& user = v.at("userId");
  FUZZ_CHECK(user.is_int64() && user.as_int64() >= 1 && user.as_int64() <= (std::int64_t{1} << 53) &&
                 static_cast<std::uint64_t>(user.as_int64()) == parsed.value->user,
             "quota: userId accepted as something other than the body's integer from 1 to 2^53");
  const auto& max = v.at("maxTokens");
  if (max.is_null()) {
    FUZZ_CHECK(!parsed.value->max_tokens, "quota: null taken as a bound");
  } else {
    FUZZ_CHECK(max.is_int64() && max.as_int64() >= 0 && max.as_int64() <= 1'000'000'000 &&
                   parsed.value->max_tokens == static_cast<std::uint64_t>(max.as_int64()),
               "quota: maxTokens accepted as something other than the body's integer from 0 to 1e9");
  }
  FUZZ_CHECK(!reference_has_duplicates(body), "quota: accepted a body naming a member twice");
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
  FUZZ_CHECK(std::string_view(back->as_string()) == description,
             "description changed on its way through JSON");
}

// Accepted expiry fields are the body's integers, unchanged.
void check_expiry_fields(std::string_view body, const tokend::core::expiry_request& e) {
  const auto v = boost::json::parse(body).as_object();
  for (const auto& [name, field] :
       {std::pair{"expiresAt", e.expires_at}, std::pair{"expiresIn", e.expires_in}}) {
    const auto* member = v.if_contains(name);
    FUZZ_CHECK(member ? (member->is_int64() && field == member->as_int64()) : !field,
               "an expiry field accepted as something other than the body's integer");
  }
}

void check_create(std::string_view body) {
  const auto parsed = server::parse_create_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(), "create: a refusal must say why, and only a refusal");
  if (!parsed) return;
  FUZZ_CHECK(parsed.value->type == "admin" || parsed.value->type == "operator",
             "create: accepted a type other than admin or operator");
  check_expiry_fields(body, parsed.value->expiry);
  const std::string& d = parsed.value->description;
  FUZZ_CHECK(core::description_problem(d) == nullptr, "create: accepted a description the rules refuse");
  const auto length = reference_utf8_length(d);
  FUZZ_CHECK(length && *length >= 1 && *length <= core::max_description_chars,
             "create: accepted description is not 1..256 code points of valid UTF-8");
  FUZZ_CHECK(reference_description_ok(d), "create: accepted a control, bidi or blank description");
  FUZZ_CHECK(!reference_has_duplicates(body), "create: accepted a body naming a member twice");
  check_round_trip(d);
}

// An accepted selector names exactly the token or the id of the body, never both.
void check_selector(std::string_view body, const server::token_selector& s, const char* what) {
  const auto v = boost::json::parse(body).as_object();
  FUZZ_CHECK(v.contains("token") != v.contains("id"), what);
  if (s.key) {
    FUZZ_CHECK(!s.key->empty() && v.contains("token") && v.at("token").as_string() == *s.key, what);
  } else {
    FUZZ_CHECK(s.id >= 1 && v.contains("id") && v.at("id").to_number<std::uint64_t>() == s.id, what);
  }
}

void check_delete(std::string_view body) {
  const auto parsed = server::parse_delete_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(), "delete: a refusal must say why, and only a refusal");
  if (!parsed) return;
  check_selector(body, *parsed.value, "delete: accepted a body not naming one token or one positive id");
  FUZZ_CHECK(!reference_has_duplicates(body), "delete: accepted a body naming a member twice");
}

void check_roll(std::string_view body) {
  const auto parsed = server::parse_roll_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(), "roll: a refusal must say why, and only a refusal");
  if (!parsed) return;
  check_selector(body, parsed.value->old, "roll: accepted a body not naming one token or one positive id");
  FUZZ_CHECK(parsed.value->overlap >= 0 && parsed.value->overlap <= server::max_overlap_seconds,
             "roll: accepted an overlap out of range");
  check_expiry_fields(body, parsed.value->expiry);
  FUZZ_CHECK(!reference_has_duplicates(body), "roll: accepted a body naming a member twice");
}

// An accepted `rateLimit` is the body's: null, or exactly its integers within bounds (burst 0 and
// window 1 when absent), with no other member.
void check_rate_limit_member(std::string_view body, const std::optional<core::rate_limit>& limit,
                             const char* what) {
  const auto v = boost::json::parse(body).as_object();
  const auto* member = v.if_contains("rateLimit");
  FUZZ_CHECK(member != nullptr || !limit, what);
  if (!member || member->is_null()) {
    FUZZ_CHECK(!limit, what);
    return;
  }
  FUZZ_CHECK(limit && member->is_object(), what);
  const auto& o = member->as_object();
  for (const auto& field : o) {
    FUZZ_CHECK(field.key() == "limit" || field.key() == "window" || field.key() == "burst", what);
  }
  const auto integer = [&o](const char* name, std::uint64_t absent) {
    const auto* m = o.if_contains(name);
    if (!m) return absent;
    FUZZ_CHECK(m->is_uint64() || (m->is_int64() && m->as_int64() >= 0), "rate limit: a non-integer accepted");
    return m->to_number<std::uint64_t>();
  };
  FUZZ_CHECK(
      o.contains("limit") && integer("limit", 0) == limit->limit && limit->limit <= core::max_rate_limit,
      what);
  FUZZ_CHECK(integer("window", 1) == limit->window_seconds && limit->window_seconds >= 1 &&
                 limit->window_seconds <= core::max_rate_window_seconds,
             what);
  FUZZ_CHECK(integer("burst", 0) == limit->burst && limit->burst <= core::max_rate_limit, what);
}

void check_rate_limit(std::string_view body) {
  const auto parsed = server::parse_rate_limit_body(body);
  FUZZ_CHECK(bool(parsed) == parsed.problem.empty(),
             "rate limit: a refusal must say why, and only a refusal");
  if (const auto create = server::parse_create_body(body)) {
    check_rate_limit_member(body, create.value->rate_limit, "create: accepted a rateLimit the rules refuse");
  }
  if (const auto roll = server::parse_roll_body(body)) {
    const auto& update = roll.value->rate_limit;
    FUZZ_CHECK(update.replace == boost::json::parse(body).as_object().contains("rateLimit"),
               "roll: replaces the limit without a rateLimit, or keeps it with one");
    check_rate_limit_member(body, update.limit, "roll: accepted a rateLimit the rules refuse");
  }
  if (!parsed) return;
  check_selector(body, parsed.value->target, "rate limit: accepted a body not naming one token or id");
  FUZZ_CHECK(boost::json::parse(body).as_object().contains("rateLimit"), "rate limit: accepted without one");
  check_rate_limit_member(body, parsed.value->rate_limit,
                          "rate limit: accepted a rateLimit the rules refuse");
  FUZZ_CHECK(!reference_has_duplicates(body), "rate limit: accepted a body naming a member twice");
}

void check_description_rules(std::string_view raw) {
  const auto ours = core::utf8_length(raw);
  FUZZ_CHECK(ours == reference_utf8_length(raw), "utf8_length disagrees with the RFC 3629 table");
  const char* problem = core::description_problem(raw);
  FUZZ_CHECK((problem == nullptr) == reference_description_ok(raw),
             "description_problem disagrees with the reference rules");
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
  // Every charset parameter of an accepted type names UTF-8, once trimmed of blanks, its quotes and
  // escapes dropped and its case folded.
  const auto trimmed = [](std::string t) {
    const auto first = t.find_first_not_of(" \t");
    if (first == std::string::npos) return std::string();
    return t.substr(first, t.find_last_not_of(" \t") - first + 1);
  };
  const auto folded = [](std::string_view t) {
    std::string out;
    for (char c : t) {
      if (c == '"' || c == '\\') continue;
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
  };
  const auto semi = raw.find(';');
  const std::string params(semi == std::string_view::npos ? std::string_view{} : raw.substr(semi + 1));
  for (std::size_t at = 0; at <= params.size();) {
    auto end = params.find(';', at);
    if (end == std::string::npos) end = params.size();
    const std::string param = params.substr(at, end - at);
    const auto eq = param.find('=');
    std::string name = trimmed(param.substr(0, eq));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "charset") {
      FUZZ_CHECK(eq != std::string::npos, "content type: accepted a charset without a value");
      FUZZ_CHECK(trimmed(folded(param.substr(eq + 1))) == "utf-8",
                 "content type: accepted a charset other than utf-8");
    }
    at = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_create(input);
  check_delete(input);
  check_roll(input);
  check_rate_limit(input);
  check_quota(input);
  check_description_rules(input);
  check_duplicates(input);
  check_content_type(input);
  return 0;
}
