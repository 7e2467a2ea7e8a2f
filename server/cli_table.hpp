// The CLI's readable output: token objects of the API turned into rows, and rows into an aligned
// table with UTC ISO 8601 times.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tokend::server::cli {

// The server sent something that is not the documented API.
struct reply_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One token as the table shows it, every cell already text.
struct token_row {
  std::string id;
  std::string user;
  std::string type;
  std::string prefix;  // the masked key of a list, or the first characters of a new key
  std::string created;
  std::string expires;
  std::string last_used;
  std::string rate_limit;  // see rate_limit_cell
  std::string description;
};

// "2026-12-01T19:00:00Z" for Unix seconds.
[[nodiscard]] std::string iso_time(std::int64_t unix_seconds);

// A time field of a token object (a string of Unix seconds, a number, null or absent) as a cell:
// its ISO time, or "-" for null or absent. Throws reply_error for anything else.
[[nodiscard]] std::string time_cell(const boost::json::object& token, std::string_view name);

// The "rateLimit" member of a token object (or of a PATCH or limited answer): "100/1s",
// "100/1s burst 200", "none" for {limit: 0}, "default" for null (the server's default), "-" when
// absent. Throws reply_error for anything else.
[[nodiscard]] std::string rate_limit_cell(const boost::json::object& token);

// One token object of a create, list or roll answer. Fields the server does not send yet show "-";
// a field of the wrong type throws reply_error.
[[nodiscard]] token_row row_of(const boost::json::object& token);

// Every element of a `tokens` array; throws reply_error if one is not an object.
[[nodiscard]] std::vector<token_row> rows_of(const boost::json::array& tokens);

// The header and the rows, columns separated by two spaces and padded to the widest cell (counted
// in code points); the last column unpadded; every line ends with '\n'. Control characters in a
// cell are shown as '?', so that no server answer can drive the terminal.
[[nodiscard]] std::string format_table(const std::vector<token_row>& rows);

// The keys of a GET /api/v2/tokens/limited answer as a table like format_table's: USER, ID,
// PREFIX, RATE LIMIT, REFUSED, ADMITTED. Throws reply_error for an element that is not an object.
[[nodiscard]] std::string format_limited_table(const boost::json::array& keys);

}  // namespace tokend::server::cli
