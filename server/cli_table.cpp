// Token objects to rows, rows to a table; see cli_table.hpp.
#include "server/cli_table.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>

namespace tokend::server::cli {
namespace {

constexpr std::size_t columns = 9;
using cells = std::array<std::string_view, columns>;

cells cells_of(const token_row& r) {
  return {r.id, r.user, r.type, r.prefix, r.created, r.expires, r.last_used, r.rate_limit, r.description};
}

constexpr cells header = {"ID",      "USER",      "TYPE",       "PREFIX",     "CREATED",
                          "EXPIRES", "LAST USED", "RATE LIMIT", "DESCRIPTION"};

constexpr std::size_t limited_columns = 6;
constexpr std::array<std::string_view, limited_columns> limited_header = {
    "USER", "ID", "PREFIX", "RATE LIMIT", "REFUSED", "ADMITTED"};

// Code points, not bytes, so that a description in another script keeps the columns aligned.
std::size_t width(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
  return n;
}

// C0 controls, DEL and the C1 controls (U+0080-U+009F, 0xC2 0x80-0x9F in UTF-8) become '?'.
void append_printable(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out += '?';
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      out += '?';
      ++i;
    } else {
      out += s[i];
    }
  }
}

std::string integer_cell(const boost::json::object& token, std::string_view name) {
  const auto* v = token.if_contains(name);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  throw reply_error("the server's token has a \"" + std::string(name) + "\" that is not an integer");
}

std::string string_cell(const boost::json::object& token, std::string_view name) {
  const auto* v = token.if_contains(name);
  if (v == nullptr || v->is_null()) return "-";
  if (!v->is_string()) {
    throw reply_error("the server's token has a \"" + std::string(name) + "\" that is not a string");
  }
  return std::string(v->get_string());
}

// "90s", "5m", "2h", "1d": the largest unit that divides the window.
std::string window_text(std::uint64_t seconds) {
  if (seconds % 86'400 == 0) return std::to_string(seconds / 86'400) + "d";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

std::uint64_t count_member(const boost::json::object& limit, std::string_view name, std::uint64_t fallback) {
  const auto* v = limit.if_contains(name);
  if (v == nullptr) return fallback;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  throw reply_error("the server's rateLimit has a \"" + std::string(name) +
                    "\" that is not a non-negative integer");
}

// Rows of any width into aligned columns; see format_table.
template <std::size_t N>
std::string render(const std::vector<std::array<std::string_view, N>>& lines) {
  std::array<std::size_t, N> widths{};
  for (const auto& line : lines) {
    for (std::size_t c = 0; c < N; ++c) widths.at(c) = std::max(widths.at(c), width(line.at(c)));
  }
  std::string out;
  for (const auto& line : lines) {
    for (std::size_t c = 0; c < N; ++c) {
      append_printable(out, line.at(c));
      if (c + 1 == N) break;
      out.append(widths.at(c) - width(line.at(c)) + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

// A new key is shown whole elsewhere; the table shows its first characters as a list would.
std::string prefix_cell(const boost::json::object& token) {
  std::string key = string_cell(token, "token");
  constexpr std::size_t shown = 6;
  if (key.size() > shown + 4 && key.find('.') == std::string::npos) key = key.substr(0, shown) + "....";
  return key;
}

}  // namespace

std::string iso_time(std::int64_t unix_seconds) {
  using namespace std::chrono;
  const sys_seconds t{seconds(unix_seconds)};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf.data();
}

std::string time_cell(const boost::json::object& token, std::string_view name) {
  const auto* v = token.if_contains(name);
  if (v == nullptr || v->is_null()) return "-";
  std::int64_t seconds = 0;
  bool ok = false;
  if (v->is_string()) {
    const std::string_view s = v->get_string();
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seconds);
    ok = !s.empty() && ec == std::errc{} && end == s.data() + s.size();
  } else if (v->is_int64()) {
    seconds = v->get_int64();
    ok = true;
  }
  // Up to the year 9999, which is all ISO 8601's basic form has room for.
  constexpr std::int64_t last = 253'402'300'799;
  if (!ok || seconds < 0 || seconds > last) {
    throw reply_error("the server's token has a \"" + std::string(name) + "\" that is not Unix seconds");
  }
  return iso_time(seconds);
}

std::string rate_limit_cell(const boost::json::object& token) {
  const auto* v = token.if_contains("rateLimit");
  if (v == nullptr) return "-";
  if (v->is_null()) return "default";
  if (!v->is_object()) throw reply_error("the server's token has a \"rateLimit\" that is not an object");
  const auto& limit = v->get_object();
  if (limit.if_contains("limit") == nullptr) throw reply_error("the server's rateLimit has no \"limit\"");
  const std::uint64_t n = count_member(limit, "limit", 0);
  if (n == 0) return "none";
  const std::uint64_t burst = count_member(limit, "burst", 0);
  std::string cell =
      std::to_string(n) + "/" + window_text(std::max<std::uint64_t>(1, count_member(limit, "window", 1)));
  if (burst != 0 && burst != n) cell += " burst " + std::to_string(burst);
  return cell;
}

token_row row_of(const boost::json::object& token) {
  return {integer_cell(token, "id"),        integer_cell(token, "userId"),
          string_cell(token, "type"),       prefix_cell(token),
          time_cell(token, "timestamp"),    time_cell(token, "expiresAt"),
          time_cell(token, "lastUsedAt"),   rate_limit_cell(token),
          string_cell(token, "description")};
}

std::vector<token_row> rows_of(const boost::json::array& tokens) {
  std::vector<token_row> rows;
  rows.reserve(tokens.size());
  for (const auto& t : tokens) {
    if (!t.is_object()) throw reply_error("the server's token list holds something that is not an object");
    rows.push_back(row_of(t.get_object()));
  }
  return rows;
}

std::string format_table(const std::vector<token_row>& rows) {
  std::vector<cells> lines;
  lines.reserve(rows.size() + 1);
  lines.push_back(header);
  for (const auto& r : rows) lines.push_back(cells_of(r));
  return render(lines);
}

std::string format_limited_table(const boost::json::array& keys) {
  std::vector<std::array<std::string, limited_columns>> texts;
  texts.reserve(keys.size());
  for (const auto& k : keys) {
    if (!k.is_object()) throw reply_error("the server's limited keys hold something that is not an object");
    const auto& key = k.get_object();
    texts.push_back({integer_cell(key, "userId"), integer_cell(key, "id"), string_cell(key, "token"),
                     rate_limit_cell(key), integer_cell(key, "refused"), integer_cell(key, "admitted")});
  }
  std::vector<std::array<std::string_view, limited_columns>> lines;
  lines.reserve(texts.size() + 1);
  lines.push_back(limited_header);
  for (const auto& t : texts) lines.push_back({t[0], t[1], t[2], t[3], t[4], t[5]});
  return render(lines);
}

}  // namespace tokend::server::cli
