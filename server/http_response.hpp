// The response type of both listeners: a status, header fields kept as the lines they are sent
// as, and a string body. The session adds the version, Content-Length and Connection when it
// writes the head (response_head.hpp).
//
// Beast's message would keep an allocated node per field and search its fields again for
// keep_alive() and prepare_payload(); every API answer pays that, so fields go into one buffer
// here, inline for the API's usual answers (see docs/PERFORMANCE.md).
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace tokend::server {

class http_response {
 public:
  http_response() = default;
  explicit http_response(unsigned status, std::string body = {}) : status_(status), body_(std::move(body)) {}

  [[nodiscard]] unsigned result_int() const noexcept { return status_; }

  // Appends "name: value". Names and values are the service's own or checked (a request id), never
  // raw client bytes: nothing here holds a CR or LF. No field is sent twice, so nothing is replaced.
  void insert(std::string_view name, std::string_view value);
  void insert(boost::beast::http::field name, std::string_view value) {
    insert(boost::beast::http::to_string(name), value);
  }

  // The value of the first field called `name` (case-insensitive), empty if none; and how many
  // there are. For checks and tests: the session sends the lines as they are.
  [[nodiscard]] std::string_view operator[](std::string_view name) const noexcept;
  [[nodiscard]] std::string_view operator[](boost::beast::http::field name) const noexcept {
    return (*this)[boost::beast::http::to_string(name)];
  }
  [[nodiscard]] std::size_t count(std::string_view name) const noexcept;
  [[nodiscard]] std::size_t count(boost::beast::http::field name) const noexcept {
    return count(boost::beast::http::to_string(name));
  }

  // Every field as "Name: value\r\n", in the order inserted.
  [[nodiscard]] std::string_view fields() const noexcept { return {fields_.data(), fields_.size()}; }

  [[nodiscard]] std::string& body() noexcept { return body_; }
  [[nodiscard]] const std::string& body() const noexcept { return body_; }

 private:
  // Calls f(name, value) for each field until it returns true.
  template <class F>
  void visit(F&& f) const noexcept;

  unsigned status_ = 200;
  // Room for the longest common head: type, cache, request id, a verified user and its rate limit.
  boost::container::small_vector<char, 320> fields_;
  std::string body_;
};

}  // namespace tokend::server
