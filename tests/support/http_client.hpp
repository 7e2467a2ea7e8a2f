// A tiny HTTP client for tests: every call runs its own io_context under a deadline, so a server
// that never answers fails the test instead of hanging it.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tokend::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

struct reply {
  unsigned status = 0;  // 0: no response (connection closed, timed out or refused)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  bool keep_alive = false;
  unsigned version = 0;  // 10 or 11
  std::string error;

  [[nodiscard]] boost::json::value json() const { return boost::json::parse(body); }
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A keep-alive connection to host:port (127.0.0.1 unless told). Each exchange has its own deadline.
class connection {
 public:
  explicit connection(std::uint16_t port, std::chrono::milliseconds timeout = 5s,
                      const char* host = "127.0.0.1");

  reply send(http::request<http::string_body> req);
  reply request(http::verb method, const std::string& target, const std::string& body = {},
                const std::vector<std::pair<std::string, std::string>>& headers = {}, unsigned version = 11);
  // Writes raw bytes and reads whatever comes back until the peer closes or `wait` passes.
  std::string raw(const std::string& bytes, std::chrono::milliseconds wait = 2s);
  // Writes raw bytes without reading anything; false when the write failed or timed out.
  bool write_raw(const std::string& bytes);
  // Reads one response (a 1xx interim response counts as one), e.g. after write_raw.
  reply read_response();
  // True when the server has closed the connection (reads EOF) within `wait`.
  bool closed_by_peer(std::chrono::milliseconds wait);

  beast::tcp_stream& stream() { return stream_; }

 private:
  void read_until_close(std::string& received, bool& done);
  static void fill(reply& out, http::response<http::string_body> res);

  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::chrono::milliseconds timeout_;
  beast::error_code connect_error_;
  std::array<char, 4096> chunk_{};
  bool eof_ = false;
};

// One request on a fresh connection.
inline reply request(std::uint16_t port, http::verb method, const std::string& target,
                     const std::string& body = {},
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  connection c(port);
  return c.request(method, target, body, headers);
}

}  // namespace tokend::test
