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
                      const char* host = "127.0.0.1")
      : stream_(ioc_), timeout_(timeout) {
    bool done = false;
    stream_.expires_after(timeout_);
    stream_.async_connect(tcp::endpoint(net::ip::make_address(host), port), [&](beast::error_code ec) {
      done = true;
      connect_error_ = ec;
    });
    ioc_.run_for(timeout_ + 1s);
    ioc_.restart();
    if (!done || connect_error_) throw std::runtime_error("connect failed: " + connect_error_.message());
  }

  reply send(http::request<http::string_body> req) {
    req.prepare_payload();
    if (req.find(http::field::host) == req.end()) req.set(http::field::host, "127.0.0.1");
    bool done = false;
    beast::error_code write_error;
    stream_.expires_after(timeout_);
    http::async_write(stream_, req, [&](beast::error_code ec, std::size_t) {
      write_error = ec;
      done = true;
    });
    ioc_.run_for(timeout_ + 1s);
    ioc_.restart();
    // A server may answer early (413) and close while we still send: its answer is then already
    // here to read, as any HTTP/1.1 client should look for.
    const bool answered_early =
        write_error == net::error::broken_pipe || write_error == net::error::connection_reset;
    if (!done || (write_error && !answered_early)) {
      reply out;
      out.error = done ? write_error.message() : "could not send before the deadline";
      stream_.close();
      return out;
    }
    reply out = read_response();
    if (!out.error.empty() && write_error) out.error = write_error.message() + ", then " + out.error;
    return out;
  }

  reply request(http::verb method, const std::string& target, const std::string& body = {},
                const std::vector<std::pair<std::string, std::string>>& headers = {}, unsigned version = 11) {
    http::request<http::string_body> req{method, target, version};
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == http::verb::post || method == http::verb::delete_) {
      if (req.find(http::field::content_type) == req.end() && !body.empty()) {
        req.set(http::field::content_type, "application/json");
      }
      req.body() = body;
    }
    return send(std::move(req));
  }

  // Writes raw bytes and reads whatever comes back until the peer closes or `wait` passes.
  std::string raw(const std::string& bytes, std::chrono::milliseconds wait = 2s) {
    std::string received;
    bool done = false;
    stream_.expires_after(wait);
    net::async_write(stream_, net::buffer(bytes), [&](beast::error_code ec, std::size_t) {
      if (ec) {
        done = true;
        return;
      }
      read_until_close(received, done);
    });
    ioc_.run_for(wait + 1s);
    ioc_.restart();
    return received;
  }

  // Writes raw bytes without reading anything; false when the write failed or timed out.
  bool write_raw(const std::string& bytes) {
    bool done = false;
    beast::error_code result;
    stream_.expires_after(timeout_);
    net::async_write(stream_, net::buffer(bytes), [&](beast::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    ioc_.run_for(timeout_ + 1s);
    ioc_.restart();
    return done && !result;
  }

  // Reads one response (a 1xx interim response counts as one), e.g. after write_raw.
  reply read_response() {
    reply out;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    bool done = false;
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code ec, std::size_t) {
      if (ec) out.error = ec.message();
      done = true;
    });
    ioc_.run_for(timeout_ + 1s);
    ioc_.restart();
    if (!done) {
      out.error = "no answer before the deadline";
      stream_.close();
      return out;
    }
    if (out.error.empty()) fill(out, parser.release());
    return out;
  }

  // True when the server has closed the connection (reads EOF) within `wait`.
  bool closed_by_peer(std::chrono::milliseconds wait) {
    std::string received;
    bool done = false;
    stream_.expires_after(wait);
    eof_ = false;
    read_until_close(received, done);
    ioc_.run_for(wait + 1s);
    ioc_.restart();
    return eof_;
  }

  beast::tcp_stream& stream() { return stream_; }

 private:
  void read_until_close(std::string& received, bool& done) {
    stream_.async_read_some(net::buffer(chunk_), [&](beast::error_code ec, std::size_t n) {
      received.append(chunk_.data(), n);
      if (ec) {
        eof_ = ec == net::error::eof || ec == net::error::connection_reset;
        done = true;
        return;
      }
      read_until_close(received, done);
    });
  }

  static void fill(reply& out, http::response<http::string_body> res) {
    out.status = res.result_int();
    out.body = res.body();
    out.keep_alive = res.keep_alive();
    out.version = res.version();
    for (const auto& f : res) out.headers[lower(std::string(f.name_string()))] = std::string(f.value());
  }

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
