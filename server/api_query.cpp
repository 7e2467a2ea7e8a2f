// Reading a request's target: the caller's key, paging and the other query parameters; see
// api_parsing.hpp.
#include "server/api_parsing.hpp"

#include "core/key.hpp"
#include "server/text_rules.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::server {

using text::iequals;
using text::parse_index;
using text::trim;

std::optional<std::string_view> bearer_key(std::string_view authorization) noexcept {
  const auto header = trim(authorization);
  if (header.size() <= 7 || !iequals(header.substr(0, 7), "Bearer ")) return std::nullopt;
  return trim(header.substr(7));
}

namespace {

bool needs_decoding(std::string_view part) noexcept {
  return std::any_of(part.begin(), part.end(), [](char c) { return c == '%' || c == '+'; });
}

// `part` decoded as Boost.URL's params() decodes it: percent-escapes (already checked by
// parse_request_target), and '+' as a space.
std::string decoded(std::string_view part) {
  std::string out;
  out.reserve(part.size());
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (part[i] == '%' && i + 2 < part.size()) {
      out += static_cast<char>(text::hex_value(part[i + 1]) * 16 + text::hex_value(part[i + 2]));
      i += 2;
    } else {
      out += part[i] == '+' ? ' ' : part[i];
    }
  }
  return out;
}

// Calls `f(value)` with the decoded value of each query parameter whose decoded name is `name`, in
// order, until it returns false. As Boost.URL's params() reads them, but straight from the query
// string, decoding only what holds an escape: this runs for every request.
template <class F>
void for_each_param(const request_target& target, std::string_view name, F&& f) {
  if (!target.query) return;
  std::string_view query = *target.query;
  std::string decoded_key;
  std::string decoded_value;
  for (;;) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    const auto eq = param.find('=');
    std::string_view key = param.substr(0, eq);
    if (needs_decoding(key)) {
      decoded_key = decoded(key);
      key = decoded_key;
    }
    if (key == name) {
      std::string_view value = eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
      if (needs_decoding(value)) {
        decoded_value = decoded(value);
        value = decoded_value;
      }
      if (!f(value)) return;
    }
    if (amp == std::string_view::npos) return;
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::optional<std::string> caller_key(const request_target& target,
                                      std::span<const std::string_view> authorization_headers) {
  // Two candidate keys are compared by digest, never as strings: keys are only ever compared or
  // looked up as SHA-256 digests, so no comparison's timing depends on a key's characters.
  const auto differ = [](std::string_view a, std::string_view b) {
    return core::digest_key(a) != core::digest_key(b);
  };
  std::optional<std::string> from_query;
  bool two_keys = false;
  for_each_param(target, "token", [&](std::string_view value) {
    two_keys = from_query && differ(*from_query, value);
    if (!two_keys) from_query = std::string(value);
    return !two_keys;
  });
  if (two_keys) return std::nullopt;  // two different keys
  // One Authorization header at most, and only a Bearer one: which of two headers, or of a key and
  // another scheme's credentials, is meant is a guess a proxy in front may make differently.
  std::optional<std::string> from_header;
  std::size_t headers = 0;
  for (const auto value : authorization_headers) {
    const auto header = trim(value);
    if (header.empty()) continue;  // an empty header carries nothing
    if (++headers > 1) return std::nullopt;
    const auto key = bearer_key(header);
    if (!key) return std::nullopt;
    from_header = std::string(*key);
  }
  if (from_query && from_header && differ(*from_query, *from_header)) return std::nullopt;
  return from_query ? from_query : from_header;
}

parsed<page_request> parse_paging(const request_target& target) {
  page_request req;
  std::optional<std::string> page;  // the first of each, as a lookup by name finds it
  std::optional<std::string> page_size;
  const auto first = [](std::optional<std::string>& into) {
    return [&into](std::string_view value) {
      into = std::string(value);
      return false;
    };
  };
  for_each_param(target, "page", first(page));
  for_each_param(target, "pageSize", first(page_size));
  if (page) {
    const auto v = parse_index(*page, 1'000'000'000);
    if (!v) return {std::nullopt, "Query parameter 'page' must be a non-negative integer"};
    req.page = *v;
    req.explicit_paging = true;
    req.page_given = true;
  }
  if (page_size) {
    const auto v = parse_index(*page_size, max_page_size);
    if (!v || *v == 0) return {std::nullopt, "Query parameter 'pageSize' must be an integer from 1 to 1000"};
    req.page_size = *v;
    req.explicit_paging = true;
  }
  bool twice = false;
  for_each_param(target, "cursor", [&](std::string_view value) {
    twice = req.cursor.has_value();
    req.cursor = std::string(value);
    return !twice;
  });
  if (twice) return {std::nullopt, "Query parameter 'cursor' must be given at most once"};
  if (req.cursor) req.explicit_paging = true;
  if (req.cursor && req.page_given) return {std::nullopt, std::string(cursor_with_page_problem)};
  // Both factors are bounded (1e9 and 1000), so the product cannot overflow.
  if (req.page * req.page_size > max_list_offset) return {std::nullopt, std::string(deep_page_problem)};
  return {req, {}};
}

parsed<acting_user> parse_user_id(const request_target& target) {
  acting_user acting;
  std::string problem;
  for_each_param(target, "userId", [&](std::string_view value) {
    if (acting.user) {
      problem = "Query parameter 'userId' must be given at most once";
      return false;
    }
    const auto v = parse_index(value, max_user_id);
    if (!v || *v == 0) {
      problem = "Query parameter 'userId' must be an integer from 1 to " + std::to_string(max_user_id);
      return false;
    }
    acting.user = v;
    return true;
  });
  if (!problem.empty()) return {std::nullopt, std::move(problem)};
  return {acting, {}};
}

parsed<std::size_t> parse_limited_count(const request_target& target) {
  std::optional<std::size_t> n;
  bool refused = false;
  for_each_param(target, "n", [&](std::string_view value) {
    const auto v = parse_index(value, max_limited_keys);
    refused = n || !v || *v == 0;
    n = v;
    return !refused;
  });
  if (refused) {
    return {std::nullopt, "Query parameter 'n' must be given at most once, as an integer from 1 to " +
                              std::to_string(max_limited_keys)};
  }
  return {n.value_or(default_limited_keys), {}};
}

}  // namespace tokend::server
