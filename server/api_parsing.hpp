// Pure parsing of API requests: the caller's key, list paging, and the JSON bodies of create and
// delete. No I/O here, so every rule is unit-tested without a socket.
#pragma once

#include <boost/url/url_view.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tokend::server {

// Either a value or the reason it was refused (a message safe to show the client: never a key).
template <class T>
struct parsed {
  std::optional<T> value;
  std::string problem;
  [[nodiscard]] explicit operator bool() const noexcept { return value.has_value(); }
};

// The key of one `Authorization: Bearer <key>` value, whitespace around either trimmed; nullopt for
// another scheme or a Bearer without credentials.
[[nodiscard]] std::optional<std::string_view> bearer_key(std::string_view authorization) noexcept;

// The caller's key from `?token=` (percent-decoded, among any other parameters) and/or an
// `Authorization: Bearer` header, given as the values of every Authorization header of the request
// (empty ones are ignored). Nullopt when absent, when two keys differ, when there are two or more
// Authorization headers, or when the one there is not Bearer with a key: every ambiguity is a 401.
[[nodiscard]] std::optional<std::string> caller_key(const boost::urls::url_view& target,
                                                    std::span<const std::string_view> authorization_headers);

inline constexpr std::size_t max_page_size = 1000;

struct page_request {
  std::size_t page = 0;
  std::size_t page_size = max_page_size;
  bool explicit_paging = false;  // page or pageSize was given: the response carries paging fields
};
[[nodiscard]] parsed<page_request> parse_paging(const boost::urls::url_view& target);

struct create_body {
  std::string type;
  std::string description;
};
// Both bodies are refused when not a JSON object or when an object names a member twice.
[[nodiscard]] parsed<create_body> parse_create_body(std::string_view body);

// The key to delete, as given (format is checked by the service: a malformed key is "not found").
[[nodiscard]] parsed<std::string> parse_delete_body(std::string_view body);

// Whether a Content-Type names JSON in UTF-8: application/json, or any application/*+json, with
// any parameters but a charset other than utf-8 (any case, quoted or not).
[[nodiscard]] bool is_json_content_type(std::string_view content_type);

}  // namespace tokend::server
