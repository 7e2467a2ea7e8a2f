// Turns the bytes of one connection into one request at a time, under the framing rules tokend
// enforces beyond Beast's parser: bounded header, chunk lines, chunk extensions and trailers;
// `Transfer-Encoding` only as exactly `chunked` in HTTP/1.1; trailer fields never merged into the
// header. No I/O here: the session feeds it what it reads, and the HTTP fuzzer feeds it the same way.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tokend::server {

// Requests refused by tokend's framing rules, where Beast's parser would have accepted them.
enum class framing_error {
  unsupported_transfer_coding = 1,  // a coding other than chunked (gzip, identity, unknown): 400
  bad_transfer_encoding,            // empty, malformed, or chunked more than once: 400
  transfer_encoding_in_http10,      // HTTP/1.0 has no chunked coding: faulty framing, 400
  chunk_line_too_long,              // a chunk-size line that does not end within its bound: 400
  chunk_extensions_too_long,        // the chunk extensions of a request add up past their bound: 400
  trailer_too_large,                // the trailer section exceeds what the header left of its bound: 431
};
[[nodiscard]] const boost::system::error_category& framing_category() noexcept;
[[nodiscard]] boost::system::error_code make_error_code(framing_error e) noexcept;

// Everything one chunk-size line may hold: the size (leading zeros and all) and its extensions.
inline constexpr std::size_t max_chunk_line_bytes = 320;
// The chunk extensions of all the chunks of one request together. tokend uses none.
inline constexpr std::size_t max_chunk_extension_bytes = 256;

class request_reader : private boost::beast::http::basic_parser<true> {
  using base = boost::beast::http::basic_parser<true>;

 public:
  using request_type = boost::beast::http::request<boost::beast::http::string_body>;

  // The header (request line and fields) and the trailer section share `max_header_bytes`.
  request_reader(std::size_t max_header_bytes, std::size_t max_body_bytes);

  // Feeds what the connection delivered and returns how much of it was used; the caller keeps the
  // rest and feeds it again with more. `ec` is need_more when a complete request needs more bytes,
  // clear when the header or the request is complete (or the rest should simply be fed again),
  // and anything else when the request is refused (see status_for_read_error): then the
  // connection must not be read for another request.
  std::size_t feed(boost::asio::const_buffer input, boost::beast::error_code& ec);

  using base::got_some;
  using base::is_done;
  using base::is_header_done;
  using base::put_eof;

  [[nodiscard]] const request_type& get() const noexcept { return message_; }
  [[nodiscard]] request_type release() { return std::move(message_); }
  // The bytes of the request line and header fields, once the header is complete.
  [[nodiscard]] std::size_t header_bytes() const noexcept { return header_bytes_; }

 private:
  void on_request_impl(boost::beast::http::verb method, boost::beast::string_view method_str,
                       boost::beast::string_view target, int version, boost::beast::error_code& ec) override;
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code& ec) override;
  void on_header_impl(boost::beast::error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         boost::beast::error_code& ec) override;
  std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                            boost::beast::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, boost::beast::string_view body,
                                 boost::beast::error_code& ec) override;
  void on_finish_impl(boost::beast::error_code& ec) override;

  // Bounds the bytes the parser left unused while it waits for the rest of a chunk-size line or
  // of the trailer section: Beast waits for the end of either however long it is.
  void check_pending_chunk_bytes(std::string_view pending, boost::beast::error_code& ec) const;
  [[nodiscard]] std::size_t trailer_budget() const noexcept;

  request_type message_;
  std::size_t max_header_bytes_;
  std::size_t max_body_bytes_;
  std::size_t header_bytes_ = 0;  // consumed while reading the header
  bool header_complete_ = false;  // set once on_header_impl has run: later fields are trailers
  std::size_t trailer_bytes_ = 0;
  std::size_t extension_bytes_ = 0;
};

}  // namespace tokend::server

template <>
struct boost::system::is_error_code_enum<tokend::server::framing_error> : std::true_type {};
