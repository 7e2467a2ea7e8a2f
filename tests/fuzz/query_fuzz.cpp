// Fuzz target: the request target's query string as the router reads it. The input is a request
// target, optionally followed by a newline and an Authorization header value. Checked: the router's
// own target check (parse_request_target) against Boost.URL's origin-form parser, Boost.URL's
// percent-decoding of each parameter against a decoder of our own, then caller_key, parse_paging and
// parse_user_id against the rules of API.md restated independently here, and the list cursor's
// codec on every `cursor` value.
#include "fuzz_check.hpp"

#include "core/list_cursor.hpp"
#include "server/api_parsing.hpp"
#include "server/api_router.hpp"

#include <boost/url/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace server = tokend::server;

namespace {

struct param {
  std::string key;
  std::string value;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: %XX escapes, '+' is a space. The input was already
// validated by Boost.URL, so every '%' starts a complete escape.
std::string decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      FUZZ_CHECK(i + 2 < s.size(), "query: Boost.URL accepted a truncated percent-escape");
      const int hi = hex_digit(s[i + 1]);
      const int lo = hex_digit(s[i + 2]);
      FUZZ_CHECK(hi >= 0 && lo >= 0, "query: Boost.URL accepted a bad percent-escape");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The parameters of an encoded query: split on '&', then on the first '='.
std::vector<param> reference_params(std::string_view query) {
  std::vector<param> out;
  for (;;) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    const auto eq = item.find('=');
    out.push_back(
        {decode(item.substr(0, eq)), eq == std::string_view::npos ? "" : decode(item.substr(eq + 1))});
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// docs/API.md: the key from ?token= (all occurrences must agree) and/or "Authorization: Bearer";
// both present and different, or an Authorization header of another scheme, is no key at all.
std::optional<std::string> reference_caller_key(const std::vector<param>& params, std::string_view header) {
  std::optional<std::string> from_query;
  for (const auto& p : params) {
    if (p.key != "token") continue;
    if (from_query && *from_query != p.value) return std::nullopt;
    from_query = p.value;
  }
  std::optional<std::string> from_header;
  const auto h = trim(header);
  if (h.size() > 7) {
    std::string scheme(h.substr(0, 7));
    for (auto& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (scheme == "bearer ") from_header = std::string(trim(h.substr(7)));
  }
  if (!h.empty() && !from_header) return std::nullopt;
  if (from_query && from_header && *from_query != *from_header) return std::nullopt;
  return from_query ? from_query : from_header;
}

// A decimal of digits only, at most `max`; nullopt otherwise (without overflowing on long input).
std::optional<std::size_t> reference_index(std::string_view s, std::size_t max) {
  if (s.empty()) return std::nullopt;
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::size_t>(c - '0');
    if (v > max) return std::nullopt;
  }
  return v;
}

const param* first_named(const std::vector<param>& params, std::string_view key) {
  for (const auto& p : params) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

void check_paging(const server::request_target& target, const std::vector<param>& params) {
  const auto paging = server::parse_paging(target);
  FUZZ_CHECK(bool(paging) == paging.problem.empty(), "paging: a refusal must say why, and only a refusal");
  const param* page = first_named(params, "page");
  const param* size = first_named(params, "pageSize");
  const auto page_value = page ? reference_index(page->value, 1'000'000'000) : std::optional<std::size_t>(0);
  const auto size_value = size ? reference_index(size->value, server::max_page_size)
                               : std::optional<std::size_t>(server::max_page_size);
  std::size_t cursors = 0;
  for (const auto& p : params) cursors += p.key == "cursor" ? 1 : 0;
  // A cursor once at most, never with a page; a page no deeper than 10000 tokens.
  const bool valid = page_value && size_value && *size_value >= 1 && cursors <= 1 &&
                     !(cursors == 1 && page) && *page_value * *size_value <= 10'000;
  FUZZ_CHECK(bool(paging) == valid, "paging: accepted or refused against the rules");
  if (!paging) return;
  FUZZ_CHECK(paging.value->page == *page_value, "paging: wrong page");
  FUZZ_CHECK(paging.value->page_size == *size_value, "paging: wrong pageSize");
  FUZZ_CHECK(paging.value->explicit_paging == (page || size || cursors == 1),
             "paging: explicit_paging wrong");
  FUZZ_CHECK(paging.value->page_given == (page != nullptr), "paging: page_given wrong");
  const param* cursor = first_named(params, "cursor");
  FUZZ_CHECK(paging.value->cursor.has_value() == (cursor != nullptr), "paging: cursor given but not taken");
  if (cursor) FUZZ_CHECK(*paging.value->cursor == cursor->value, "paging: cursor decoded differently");
  // The router multiplies the two into a store offset: it must not wrap.
  FUZZ_CHECK(paging.value->page <= SIZE_MAX / paging.value->page_size, "paging: page * pageSize overflows");
}

// A cursor is accepted only as the codec writes it: decoding then encoding gives the text back, so
// no second spelling of a position (padding, another alphabet, stray bits) is ever accepted.
void check_cursors(const std::vector<param>& params) {
  tokend::core::cursor_secret secret{};
  secret[0] = 1;
  for (const auto& p : params) {
    if (p.key != "cursor") continue;
    const auto position = tokend::core::decode_list_cursor(secret, p.value);
    if (!position) continue;
    FUZZ_CHECK(tokend::core::encode_list_cursor(secret, *position) == p.value,
               "cursor: accepted a text the codec would not write");
  }
}

// userId: absent, or given once as an integer from 1 to 2^53.
void check_user_id(const server::request_target& target, const std::vector<param>& params) {
  const auto acting = server::parse_user_id(target);
  FUZZ_CHECK(bool(acting) == acting.problem.empty(), "userId: a refusal must say why, and only a refusal");
  std::size_t given = 0;
  std::size_t expected = 0;  // the user when given once and valid, else 0
  for (const auto& p : params) {
    if (p.key != "userId") continue;
    ++given;
    expected = reference_index(p.value, std::size_t{1} << 53).value_or(0);
  }
  const bool valid = given == 0 || (given == 1 && expected >= 1);
  FUZZ_CHECK(bool(acting) == valid, "userId: accepted or refused against the rules");
  if (!acting) return;
  FUZZ_CHECK(acting.value->user.has_value() == (given == 1), "userId: given but not taken, or back");
  if (given == 1) FUZZ_CHECK(acting.value->user.value_or(0) == expected, "userId: wrong user");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  std::string_view target = input.substr(0, newline);
  const std::string_view header =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  // Inputs that are not a path are taken as a query for the token endpoint, so that the fuzzer
  // spends its time on parameters rather than on rediscovering the path.
  std::string owned;
  if (target.empty() || target.front() != '/') {
    owned = std::string(server::tokens_path) + "?" + std::string(target);
    target = owned;
  }
  const auto url = boost::urls::parse_origin_form(target);
  const auto parts = server::parse_request_target(target);
  FUZZ_CHECK(url.has_value() == parts.has_value(), "parse_request_target and Boost.URL disagree on a target");
  if (!url) return 0;
  FUZZ_CHECK(parts->path == std::string_view(url->encoded_path()), "the targets' paths differ");
  FUZZ_CHECK(parts->query.has_value() == url->has_query() &&
                 (!parts->query || *parts->query == std::string_view(url->encoded_query())),
             "the targets' queries differ");

  std::vector<param> params;
  if (url->has_query()) params = reference_params(url->encoded_query());
  const auto decoded = url->params();
  FUZZ_CHECK(decoded.size() == params.size(), "query: parameter count differs from the reference split");
  std::size_t i = 0;
  for (const auto& p : decoded) {
    FUZZ_CHECK(p.key == params[i].key, "query: parameter name decoded differently");
    FUZZ_CHECK(p.value == params[i].value, "query: parameter value decoded differently");
    ++i;
  }

  const auto key = server::caller_key(*parts, {&header, 1});
  FUZZ_CHECK(key == reference_caller_key(params, header),
             "caller_key disagrees with the rules of docs/API.md");
  check_paging(*parts, params);
  check_cursors(params);
  check_user_id(*parts, params);
  return 0;
}
