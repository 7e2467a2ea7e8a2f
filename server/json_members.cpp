// A SAX pass over the text that only keeps the member names of the objects currently open; see
// json_members.hpp.
#include "server/json_members.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <string>
#include <unordered_set>
#include <vector>

namespace tokend::server {
namespace {

using boost::json::string_view;
using boost::system::error_code;

// Names seen per open object; parsing stops at the first repeated one.
struct member_handler {
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  std::vector<std::unordered_set<std::string>> open;
  std::string key;
  bool duplicate = false;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) {
    open.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    open.pop_back();
    return true;
  }
  bool on_string_part(string_view, std::size_t, error_code&) { return true; }
  bool on_string(string_view, std::size_t, error_code&) { return true; }
  bool on_key_part(string_view s, std::size_t, error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, error_code& ec) {
    key.append(s.data(), s.size());
    const bool inserted = open.back().insert(std::move(key)).second;
    key.clear();
    if (inserted) return true;
    duplicate = true;
    ec = boost::json::error::extra_data;  // any error: it only stops the parser
    return false;
  }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, string_view, error_code&) { return true; }
  bool on_double(double, string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }
};

}  // namespace

bool has_duplicate_members(std::string_view json) {
  boost::json::basic_parser<member_handler> parser{boost::json::parse_options{}};
  error_code ec;
  parser.write_some(false, json.data(), json.size(), ec);
  return parser.handler().duplicate;
}

}  // namespace tokend::server
