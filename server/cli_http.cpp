// The CLI's URL and its one request; see cli_http.hpp.
#include "server/cli_http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace tokend::server::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

// A list page of 1000 tokens with the longest descriptions is about 2 MB; far more is not tokend.
constexpr std::uint64_t max_reply_bytes = std::uint64_t{64} << 20;

// Starts one asynchronous operation and runs the context until it completes. The stream's
// deadline bounds every step, so this never waits longer than the call's timeout.
template <class Start>
error_code run_step(net::io_context& ioc, Start start) {
  error_code result = net::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

}  // namespace

url_result parse_server_url(std::string_view text) {
  const auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return {{}, "not a URL (expected http://HOST:PORT)"};
  const boost::urls::url_view& u = *parsed;
  if (u.scheme_id() != boost::urls::scheme::http) {
    return {{}, "only http:// is supported (put a TLS proxy on the same host for anything else)"};
  }
  if (u.has_userinfo()) return {{}, "must not hold a user name or password"};
  if (u.has_query() || u.has_fragment()) return {{}, "must not hold a query or a fragment"};
  server_url out;
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4:
      out.host = u.host_ipv4_address().to_string();
      break;
    case boost::urls::host_type::ipv6:
      out.host = u.host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::name:
      out.host = u.host_name();
      break;
    default:
      break;
  }
  if (out.host.empty()) return {{}, "needs a host name or an IP address"};
  if (u.has_port()) {
    const std::string_view port = u.port();
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
      return {{}, "has a port that is not 1-65535"};
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  std::string_view path = u.encoded_path();
  while (path.ends_with('/')) path.remove_suffix(1);
  out.prefix = std::string(path);
  return {out, {}};
}

std::string authority(const server_url& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  return (v6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

http_reply send_request(const server_url& url, const http_call& call) {
  const std::string where = "http://" + authority(url);
  net::io_context ioc;
  error_code ec;
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (ec) throw transport_error("cannot resolve " + url.host + ": " + ec.message());

  beast::tcp_stream stream(ioc);
  stream.expires_after(call.timeout);
  const auto failed = [&](std::string_view step, const error_code& e) {
    if (e == beast::error::timeout) {
      return transport_error("no answer from " + where + " within " +
                             std::to_string(call.timeout.count() / 1000) + " s (" + std::string(step) + ")");
    }
    return transport_error("cannot " + std::string(step) + " " + where + ": " + e.message());
  };

  ec = run_step(ioc, [&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
  if (ec) throw failed("connect to", ec);

  http::request<http::string_body> req;
  req.method(http::string_to_verb(call.method));
  req.target(call.target);
  req.version(11);
  req.set(http::field::host, authority(url));
  req.set(http::field::user_agent, "tokend-cli");
  req.set(http::field::accept, "application/json");
  req.set(http::field::authorization, "Bearer " + call.key);
  req.set(http::field::connection, "close");
  if (!call.body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = call.body;
  req.prepare_payload();
  ec = run_step(ioc, [&](auto handler) { http::async_write(stream, req, std::move(handler)); });
  if (ec) throw failed("send a request to", ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_reply_bytes);
  ec = run_step(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
  if (ec) throw failed("read the answer of", ec);
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  auto res = parser.release();
  return {res.result_int(), std::move(res.body())};
}

}  // namespace tokend::server::cli
