// The request target of an API request, checked and split without Boost.URL's general parser: it
// runs for every request, and a table lookup per character costs a fraction of that parser's rules.
#pragma once

#include <optional>
#include <string_view>

namespace tokend::server {

// A target in origin-form (RFC 9112 section 3.2.1, absolute-path [ "?" query ] of RFC 3986), both
// parts still percent-encoded and pointing into the request, which must outlive this.
struct request_target {
  std::string_view path;
  std::optional<std::string_view> query;  // after the '?'; empty for a bare '?', nullopt without one
};

// Nullopt unless `target` is origin-form: a '/' first, then only RFC 3986's pchar and '/' in the
// path, pchar, '/' and '?' in the query, and '%' only before two hex digits. It accepts exactly
// what boost::urls::parse_origin_form accepts (a test holds the two together).
[[nodiscard]] std::optional<request_target> parse_request_target(std::string_view target) noexcept;

}  // namespace tokend::server
