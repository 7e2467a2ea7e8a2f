// request_reader without a socket: the framing rules over whole messages fed in pieces of several
// sizes, as a connection delivers them, and the bytes it leaves waiting at any time.
#define BOOST_TEST_MODULE request_reader_test
#include <boost/test/unit_test.hpp>

#include "server/http_session.hpp"
#include "server/request_reader.hpp"

#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace server = tokend::server;
namespace http = boost::beast::http;

namespace {

constexpr std::size_t header_limit = 8 * 1024;
constexpr std::size_t body_limit = 16 * 1024;
constexpr std::size_t pieces[] = {1, 7, 300, 8192, 1 << 20};

struct outcome {
  boost::beast::error_code ec;  // clear when the request is complete
  unsigned status = 0;          // the session's answer to a refused request
  std::size_t max_pending = 0;  // the most bytes left waiting in the connection's buffer
  std::size_t left = 0;         // bytes after the request
  server::http_request request;
};

// Feeds `bytes` in pieces of `piece`, as run_session feeds what each read brings.
outcome read(std::string_view bytes, std::size_t piece, std::size_t max_header = header_limit) {
  server::request_reader reader(max_header, body_limit);
  outcome out;
  std::string buffer;
  std::size_t at = 0;
  for (;;) {
    boost::beast::error_code ec = http::error::need_more;
    std::size_t used = 0;
    if (!buffer.empty()) {
      used = reader.feed(boost::asio::buffer(buffer), ec);
      buffer.erase(0, used);
    }
    out.max_pending = std::max(out.max_pending, buffer.size());
    if (ec && ec != http::error::need_more) {
      out.ec = ec;
      out.status = server::status_for_read_error(ec);
      return out;
    }
    if (reader.is_done()) {
      out.left = buffer.size() + bytes.size() - at;
      out.request = reader.release();
      return out;
    }
    if (!ec && used > 0 && !buffer.empty()) continue;
    if (at == bytes.size()) {
      out.ec = http::error::partial_message;
      return out;
    }
    const std::size_t n = std::min(piece, bytes.size() - at);
    buffer.append(bytes.substr(at, n));
    at += n;
  }
}

std::string chunked(const std::string& headers, const std::string& chunks) {
  return "POST /api/v2/tokens HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n" + chunks;
}

const std::string te_chunked = "Transfer-Encoding: chunked\r\n";

}  // namespace

BOOST_AUTO_TEST_CASE(transfer_encoding_is_chunked_alone_or_refused) {
  const struct {
    std::string headers;
    unsigned status;  // 0: read as chunked
  } shapes[] = {
      {"Transfer-Encoding: chunked\r\n", 0},
      {"Transfer-Encoding: CHUNKED\r\n", 0},
      {"Transfer-Encoding:  chunked \r\n", 0},
      {"Transfer-Encoding: gzip\r\n", 400},
      {"Transfer-Encoding: identity\r\n", 400},
      {"Transfer-Encoding: x-custom\r\n", 400},
      {"Transfer-Encoding: gzip, chunked\r\n", 400},
      {"Transfer-Encoding: deflate;q=1, chunked\r\n", 400},
      {"Transfer-Encoding: chunked, identity\r\n", 400},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: chunked, chunked\r\n", 400},
      {"Transfer-Encoding: chunked;a=b\r\n", 400},
      {"Transfer-Encoding: \r\n", 400},
      {"Transfer-Encoding: ,\r\n", 400},
      {"Transfer-Encoding: chunked,\r\n", 400},
      {"Transfer-Encoding: , chunked\r\n", 400},
      {"Transfer-Encoding: \"chunked\"\r\n", 400},
      {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400},
      {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: gzip\r\nContent-Length: 5\r\n", 400},
  };
  for (const auto& s : shapes) {
    for (const std::size_t piece : pieces) {
      const auto r = read(chunked(s.headers, "5\r\nhello\r\n0\r\n\r\n"), piece);
      BOOST_TEST(r.status == s.status, s.headers << " in pieces of " << piece << ": " << r.ec.message());
      if (s.status == 0) {
        BOOST_TEST(!r.ec);
        BOOST_TEST(r.request.body() == "hello");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(transfer_encoding_in_http10_is_refused) {
  for (const std::string te : {"chunked", "gzip", "chunked, gzip"}) {
    const auto r = read("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: " + te +
                            "\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                        8192);
    BOOST_TEST((r.ec == server::framing_error::transfer_encoding_in_http10), te);
    BOOST_TEST(r.status == 400u);
  }
  // HTTP/1.0 with a length is read as ever.
  const auto r = read("POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 8192);
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.request.body() == "hello");
}

BOOST_AUTO_TEST_CASE(chunk_extensions_are_bounded_in_total) {
  // Extensions as Beast gives them, semicolons included: ";" + 100, ";a=\"b\"" and ";" + the rest.
  const std::string within = std::string(server::max_chunk_extension_bytes - 8, 'x');
  for (const std::size_t piece : pieces) {
    // Up to the bound over all chunks, the last one's included.
    auto r = read(chunked(te_chunked, "2;" + within.substr(0, 100) + "\r\nhe\r\n3;a=\"b\"\r\nllo\r\n0;" +
                                          within.substr(100) + "\r\n\r\n"),
                  piece);
    BOOST_TEST(!r.ec, piece << ": " << r.ec.message());
    BOOST_TEST(r.request.body() == "hello");
    // One byte more.
    r = read(chunked(te_chunked, "2;" + within.substr(0, 100) + "\r\nhe\r\n3;a=\"b\"\r\nllo\r\n0;" +
                                     within.substr(100) + "x\r\n\r\n"),
             piece);
    BOOST_TEST((r.ec == server::framing_error::chunk_extensions_too_long), piece << ": " << r.ec.message());
    BOOST_TEST(r.status == 400u);
    // Spread over many chunks, each short.
    std::string many;
    for (int i = 0; i < 40; ++i) many += "1;e=12345678\r\nx\r\n";
    r = read(chunked(te_chunked, many + "0\r\n\r\n"), piece);
    BOOST_TEST((r.ec == server::framing_error::chunk_extensions_too_long), piece << ": " << r.ec.message());
  }
}

BOOST_AUTO_TEST_CASE(a_chunk_line_that_does_not_end_is_refused_early) {
  const std::string endless(1 << 20, 'e');
  for (const std::string start :
       {"5;", "5;a=", "5;a=\"", "0000000000", "5\r\nhello\r\n0;", "5\r\nhello\r\n;"}) {
    for (const std::size_t piece : pieces) {
      const auto r = read(chunked(te_chunked, start + endless), piece);
      BOOST_TEST(r.status == 400u, start << " in pieces of " << piece << ": " << r.ec.message());
      // What waits in the buffer is one line's bound and one read at most.
      BOOST_TEST(r.max_pending <= server::max_chunk_line_bytes + piece + 2, start << " " << piece);
    }
  }
}

BOOST_AUTO_TEST_CASE(trailers_are_dropped_and_bounded) {
  for (const std::size_t piece : pieces) {
    // Within the bound: read, and none of them becomes a field of the request.
    auto r = read(chunked(te_chunked + "Content-Type: application/json\r\n",
                          "5\r\nhello\r\n0\r\nAuthorization: Bearer k\r\nContent-Type: text/plain\r\n"
                          "X-Request-Id: t\r\nConnection: close\r\n\r\n"),
                  piece);
    BOOST_TEST(!r.ec, piece << ": " << r.ec.message());
    BOOST_TEST(r.request.body() == "hello");
    BOOST_TEST(r.request.count(http::field::authorization) == 0u);
    BOOST_TEST(r.request.count(http::field::connection) == 0u);
    BOOST_TEST(r.request.count("X-Request-Id") == 0u);
    BOOST_TEST(r.request.count(http::field::content_type) == 1u);
    BOOST_TEST(r.request[http::field::content_type] == "application/json");
    BOOST_TEST(r.request.keep_alive());

    // Past what the header left of its bound: many fields, one long field, one that never ends.
    std::string fields;
    for (int i = 0; fields.size() < header_limit; ++i) fields += "X-T" + std::to_string(i) + ": v\r\n";
    r = read(chunked(te_chunked, "5\r\nhello\r\n0\r\n" + fields + "\r\n"), piece);
    BOOST_TEST(r.status == 431u, piece << ": " << r.ec.message());
    r = read(chunked(te_chunked, "5\r\nhello\r\n0\r\nX-Long: " + std::string(header_limit, 'l') + "\r\n\r\n"),
             piece);
    BOOST_TEST(r.status == 431u, piece << ": " << r.ec.message());
    r = read(chunked(te_chunked, "5\r\nhello\r\n0\r\nX-Long: " + std::string(1 << 20, 'l')), piece);
    BOOST_TEST(r.status == 431u, piece << ": " << r.ec.message());
    BOOST_TEST(r.max_pending <= header_limit + piece + 16, piece);
  }
  // The header and the trailers share the bound: a header that used most of it leaves little.
  const std::string big_header = "X-Pad: " + std::string(header_limit - 200, 'p') + "\r\n";
  auto r =
      read(chunked(te_chunked + big_header, "5\r\nhello\r\n0\r\nX-T: " + std::string(300, 't') + "\r\n\r\n"),
           8192);
  BOOST_TEST(r.status == 431u, r.ec.message());
  r = read(chunked(te_chunked + big_header, "5\r\nhello\r\n0\r\nX-T: t\r\n\r\n"), 8192);
  BOOST_TEST(!r.ec, r.ec.message());
}

BOOST_AUTO_TEST_CASE(framing_fields_in_trailers_are_refused) {
  // Beast refuses these itself; they must not pass now that trailers are dropped.
  for (const std::string trailer : {"Content-Length: 3", "Transfer-Encoding: chunked"}) {
    const auto r = read(chunked(te_chunked, "5\r\nhello\r\n0\r\n" + trailer + "\r\n\r\n"), 8192);
    BOOST_TEST(r.status == 400u, trailer << ": " << r.ec.message());
  }
}

// One field longer than what the request line left of the bound, sent in any pieces: Beast alone
// would wait for its end for ever, holding all of it.
BOOST_AUTO_TEST_CASE(a_header_field_that_does_not_end_is_refused_early) {
  const std::string endless = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(1 << 20, 'a');
  for (const std::size_t piece : pieces) {
    const auto r = read(endless, piece);
    BOOST_TEST(r.status == 431u, piece << ": " << r.ec.message());
    BOOST_TEST(r.max_pending <= header_limit + piece, piece);
  }
  // Exactly at the bound is still a header.
  std::string at_bound = "GET / HTTP/1.1\r\nX-Pad: ";
  at_bound += std::string(header_limit - at_bound.size() - 4, 'a') + "\r\n\r\n";
  BOOST_REQUIRE_EQUAL(at_bound.size(), header_limit);
  for (const std::size_t piece : pieces) BOOST_TEST(!read(at_bound, piece).ec, piece);
  BOOST_TEST(read(at_bound.substr(0, 20) + "a" + at_bound.substr(20), 8192).status == 431u);
}

BOOST_AUTO_TEST_CASE(a_field_too_long_to_store_is_431_not_an_exception) {
  // --max-header-bytes allows up to 1 MiB; Beast's fields cannot hold a value past 64 KiB.
  const auto r = read("GET / HTTP/1.1\r\nX-Big: " + std::string(70'000, 'b') + "\r\n\r\n", 8192, 1 << 20);
  BOOST_TEST(r.status == 431u, r.ec.message());
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_read_one_at_a_time) {
  const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::size_t piece : pieces) {
    const auto r = read(chunked(te_chunked, "5\r\nhello\r\n0\r\n\r\n") + second, piece);
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.request.body() == "hello");
    BOOST_TEST(r.left == second.size(), piece);
  }
}
