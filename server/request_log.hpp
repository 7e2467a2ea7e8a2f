// Request ids and access-log lines: pure functions, unit-tested without a socket.
//
// A key travels in the query string, the Authorization header or a body, so an access line never
// carries any of them: the path is logged without its query string, and anything in the logged
// fields that could still hold a key is replaced. "Key material" is a run of 32 or more hex digits,
// in any case, with separators (- _ . : / space tab + , ; = ~ |) allowed between the digits, judged
// after percent-decoding: a key in upper case, cut short, split by dashes or dots, encoded as %61 or
// with %2D between its parts, or inside longer text.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace tokend::server {

inline constexpr std::size_t max_request_id_length = 128;
inline constexpr std::size_t max_logged_path_length = 256;
inline constexpr std::size_t max_logged_text_length = 512;

// Whether `text` holds key material (see above).
[[nodiscard]] bool contains_key_material(std::string_view text);

// 1 to 128 characters of [A-Za-z0-9._-] holding no key material. Our own ids (32 hex digits) fail
// this test on purpose: a client's id of that shape may be a key, and is replaced.
[[nodiscard]] bool is_sane_request_id(std::string_view id) noexcept;

// 32 random lowercase hex characters (not a secret: only unique enough to follow a request).
[[nodiscard]] std::string new_request_id();

// The id of a request: its X-Request-Id header when sane, a new id otherwise. A new id is ours and
// is echoed and logged as it is.
[[nodiscard]] std::string request_id_for(std::string_view header_value);

// The path of a request target for a log line: no query string or fragment, each segment that holds
// part of key material (a key put in the path by mistake) replaced by "[redacted]", at most 256 bytes.
[[nodiscard]] std::string loggable_path(std::string_view target);

// The HTTP method for a log line (an unknown method is client text): "[redacted]" when it holds key
// material, else its first 32 bytes.
[[nodiscard]] std::string loggable_method(std::string_view method);

// Free text that may quote a request (an error message) for a log line: each space-separated word
// holding part of key material replaced by "[redacted]", at most 512 bytes.
[[nodiscard]] std::string loggable_text(std::string_view text);

struct access_entry {
  std::string_view method;
  std::string_view target;  // the raw request target; only its loggable path is written
  unsigned status = 0;
  std::chrono::nanoseconds duration{};
  std::string_view request_id;
  std::size_t bytes = 0;          // response body bytes
  std::size_t request_bytes = 0;  // request body bytes
};

// The fields of one access line: method, path, status, duration_seconds, request_id, bytes,
// request_bytes.
[[nodiscard]] boost::json::object access_fields(const access_entry& entry);

}  // namespace tokend::server
