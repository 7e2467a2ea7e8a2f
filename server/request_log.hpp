// Request ids and access-log lines: pure functions, unit-tested without a socket.
//
// A key travels in the query string, the Authorization header or a body, so an access line never
// carries any of them: the path is logged without its query string, and anything in the logged
// fields that could still be a key (a long hex run in the path, a request id that is a key) is
// replaced.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace tokend::server {

inline constexpr std::size_t max_request_id_length = 128;
inline constexpr std::size_t max_logged_path_length = 256;

// 1 to 128 characters of [A-Za-z0-9._-], and not a well-formed key.
[[nodiscard]] bool is_sane_request_id(std::string_view id) noexcept;

// 32 random lowercase hex characters (not a secret: only unique enough to follow a request).
[[nodiscard]] std::string new_request_id();

// The id of a request: its X-Request-Id header when sane, a new id otherwise.
[[nodiscard]] std::string request_id_for(std::string_view header_value);

// The path of a request target for a log line: no query string or fragment, hex runs of 32 or
// more characters (a key put in the path by mistake) replaced by "[redacted]", at most 256 bytes.
[[nodiscard]] std::string loggable_path(std::string_view target);

// The HTTP method for a log line (an unknown method is client text: treated like the path).
[[nodiscard]] std::string loggable_method(std::string_view method);

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
