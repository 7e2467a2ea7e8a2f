// The test HTTP client's code (support/http_client.hpp), compiled once for every test that uses
// it rather than in each of them: Beast's HTTP reading and writing are the costliest templates a
// test would otherwise instantiate.
#include "support/http_client.hpp"

#include <stdexcept>
#include <utility>

namespace tokend::test {

connection::connection(std::uint16_t port, std::chrono::milliseconds timeout, const char* host)
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

reply connection::send(http::request<http::string_body> req) {
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

reply connection::request(http::verb method, const std::string& target, const std::string& body,
                          const std::vector<std::pair<std::string, std::string>>& headers, unsigned version) {
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

std::string connection::raw(const std::string& bytes, std::chrono::milliseconds wait) {
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

bool connection::write_raw(const std::string& bytes) {
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

reply connection::read_response() {
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

bool connection::closed_by_peer(std::chrono::milliseconds wait) {
  std::string received;
  bool done = false;
  stream_.expires_after(wait);
  eof_ = false;
  read_until_close(received, done);
  ioc_.run_for(wait + 1s);
  ioc_.restart();
  return eof_;
}

void connection::read_until_close(std::string& received, bool& done) {
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

void connection::fill(reply& out, http::response<http::string_body> res) {
  out.status = res.result_int();
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  out.version = res.version();
  for (const auto& f : res) out.headers[lower(std::string(f.name_string()))] = std::string(f.value());
}

}  // namespace tokend::test
