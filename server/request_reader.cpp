// Framing rules on top of Beast's parser; see request_reader.hpp.
#include "server/request_reader.hpp"

#include "core/enum_table.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <string>

namespace tokend::server {
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The longest field name or value basic_fields stores (it keeps offsets in 16 bits).
constexpr std::size_t max_field_part_bytes = 65'000;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) noexcept {
  constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           specials.find(c) != std::string_view::npos;
  });
}

// Transfer-Encoding, all its fields taken as one list (RFC 9112 6.1): only `chunked`, once and
// alone, is a framing tokend reads. Any other coding is one it does not implement; an empty or
// malformed list, or chunked twice or with parameters, is faulty framing. Both are refused.
beast::error_code check_transfer_encoding(const http::request<http::string_body>& message) {
  std::size_t chunked = 0;
  bool unknown = false;
  const auto [first, last] = message.equal_range(http::field::transfer_encoding);
  for (auto field = first; field != last; ++field) {
    std::string_view list = field->value();
    for (;;) {
      const auto comma = list.find(',');
      const auto element = trim(list.substr(0, comma));
      const auto semicolon = element.find(';');
      const auto coding = trim(element.substr(0, semicolon));
      if (!is_token(coding)) return framing_error::bad_transfer_encoding;
      if (beast::iequals(coding, "chunked")) {
        if (semicolon != std::string_view::npos) return framing_error::bad_transfer_encoding;
        ++chunked;
      } else {
        unknown = true;
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (unknown) return framing_error::unsupported_transfer_coding;
  if (chunked != 1) return framing_error::bad_transfer_encoding;
  return {};
}

}  // namespace

const boost::system::error_category& framing_category() noexcept {
  static_assert(static_cast<int>(framing_error::trailer_too_large) == 6,
                "one message per code, in framing_error's order");
  // Shown to clients as the error message: fixed texts, never any of the request's bytes.
  static const core::message_category<6> category(
      "tokend.framing",
      {"Transfer-Encoding other than chunked is not supported", "Malformed Transfer-Encoding",
       "Transfer-Encoding is not allowed in HTTP/1.0", "Chunk size line too long",
       "Chunk extensions too long", "Request trailer fields too large"},
      "Malformed HTTP request");
  return category;
}

boost::system::error_code make_error_code(framing_error e) noexcept {
  return {static_cast<int>(e), framing_category()};
}

request_reader::request_reader(std::size_t max_header_bytes, std::size_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {
  body_limit(max_body_bytes);
}

std::size_t request_reader::feed(boost::asio::const_buffer input, beast::error_code& ec) {
  ec = {};
  if (is_done()) return 0;  // what follows belongs to the next request
  if (!is_header_done()) {
    // Beast's header_limit bounds what one step sees, while complete fields are consumed as they
    // arrive: lowered by what was consumed, it bounds the header however it is split. Not eager,
    // the parser stops at the end of the header, so the caller may answer 100-continue first.
    header_limit(static_cast<std::uint32_t>(max_header_bytes_ - std::min(header_bytes_, max_header_bytes_)));
    const std::size_t used = put(input, ec);
    header_bytes_ += used;
    // Nor is the lowered limit enough alone: Beast clamps what it scans for the header's end to
    // the limit and then waits for more without refusing, once one field is longer than what is
    // left. So what waits is bounded here too.
    if (ec == http::error::need_more && header_bytes_ + (input.size() - used) > max_header_bytes_) {
      ec = http::error::header_limit;
    }
    return used;
  }
  eager(true);
  const std::size_t used = put(input, ec);
  if (ec == http::error::need_more) {
    check_pending_chunk_bytes({static_cast<const char*>(input.data()) + used, input.size() - used}, ec);
  }
  return used;
}

void request_reader::check_pending_chunk_bytes(std::string_view pending, beast::error_code& ec) const {
  if (!chunked()) return;  // a body of known length is consumed as it arrives
  // The parser keeps the CRLF that ends a chunk's data with the next chunk-size line.
  if (pending.starts_with("\r\n")) pending.remove_prefix(2);
  const auto eol = pending.find("\r\n");
  if (eol == std::string_view::npos) {
    if (pending.size() > max_chunk_line_bytes) ec = framing_error::chunk_line_too_long;
    return;
  }
  // A complete line left unused is the last chunk's: the parser waits for the trailer section's end.
  if (eol > max_chunk_line_bytes) {
    ec = framing_error::chunk_line_too_long;
  } else if (pending.size() - eol - 2 > trailer_budget() + 2) {  // its final CRLF is not counted
    ec = framing_error::trailer_too_large;
  }
}

std::size_t request_reader::trailer_budget() const noexcept {
  return max_header_bytes_ - std::min(header_bytes_, max_header_bytes_);
}

void request_reader::on_request_impl(http::verb method, beast::string_view method_str,
                                     beast::string_view target, int version, beast::error_code&) {
  message_.target(target);
  if (method != http::verb::unknown) {
    message_.method(method);
  } else {
    message_.method_string(method_str);
  }
  message_.version(static_cast<unsigned>(version));
}

void request_reader::on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                                   beast::error_code& ec) {
  if (!header_complete_) {
    // Beast's fields throw on a name or value past 64 KiB, which a large --max-header-bytes allows.
    if (name_string.size() > max_field_part_bytes || value.size() > max_field_part_bytes) {
      ec = http::error::header_limit;
      return;
    }
    message_.insert(name, name_string, value);
    return;
  }
  // A trailer field is counted against what the header left of its bound, then dropped: trailer
  // fields must not act as header fields (RFC 9110 6.5.1), and tokend has no use for any.
  trailer_bytes_ += name_string.size() + value.size() + 4;
  if (trailer_bytes_ > trailer_budget()) ec = framing_error::trailer_too_large;
}

void request_reader::on_header_impl(beast::error_code& ec) {
  header_complete_ = true;
  if (message_.count(http::field::transfer_encoding) == 0) return;
  // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (message_.version() < 11) {
    ec = framing_error::transfer_encoding_in_http10;
    return;
  }
  ec = check_transfer_encoding(message_);
  // Whatever this check accepts, the parser must read as chunked, or the two would disagree on
  // where the body ends.
  if (!ec && !chunked()) ec = framing_error::bad_transfer_encoding;
}

void request_reader::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                       beast::error_code&) {
  if (content_length) {
    message_.body().reserve(
        static_cast<std::size_t>(std::min<std::uint64_t>(*content_length, max_body_bytes_)));
  }
}

std::size_t request_reader::on_body_impl(beast::string_view body, beast::error_code&) {
  message_.body().append(body.data(), body.size());
  return body.size();
}

void request_reader::on_chunk_header_impl(std::uint64_t, beast::string_view extensions,
                                          beast::error_code& ec) {
  extension_bytes_ += extensions.size();
  if (extension_bytes_ > max_chunk_extension_bytes) ec = framing_error::chunk_extensions_too_long;
}

std::size_t request_reader::on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) {
  message_.body().append(body.data(), body.size());
  return body.size();
}

void request_reader::on_finish_impl(beast::error_code&) {}

}  // namespace tokend::server
