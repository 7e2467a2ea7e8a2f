// One synchronous HTTP/1.1 exchange for the operator CLI (`tokend token ...`): the server's URL
// parsed into host, port and path prefix, and a request bounded by one deadline. Plain http://
// only; the key travels in the Authorization header, never in the URL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tokend::server::cli {

// Where the CLI sends its requests: `http://HOST[:PORT][/PREFIX]`.
struct server_url {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 80;
  std::string prefix;  // "" or "/path" without a trailing slash, put before /api/v2/...
};

// What is wrong with a URL, or nothing: the parsed URL.
struct url_result {
  std::optional<server_url> url;
  std::string error;
};

[[nodiscard]] url_result parse_server_url(std::string_view text);

// "HOST:PORT" for the Host header and messages ("[::1]:8080" for IPv6).
[[nodiscard]] std::string authority(const server_url& url);

struct http_reply {
  unsigned status = 0;
  std::string body;
};

// A transport failure (no connection, timeout, a reply that is not HTTP); never names the key.
struct transport_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct http_call {
  std::string method;  // "GET", "POST", "DELETE"
  std::string target;  // path and query, the URL's prefix already in front
  std::string key;     // sent as `Authorization: Bearer <key>`
  std::string body;    // sent as application/json when not empty
  std::chrono::milliseconds timeout{30'000};
};

// Connects, sends the one request, reads the whole reply (at most 64 MiB) and closes. Throws
// transport_error.
[[nodiscard]] http_reply send_request(const server_url& url, const http_call& call);

}  // namespace tokend::server::cli
