// Request ids and access-log fields; see request_log.hpp.
#include "server/request_log.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace tokend::server {
namespace {

constexpr std::size_t key_run = 32;
constexpr std::string_view redacted = "[redacted]";
// Rounds of percent-decoding before a text is judged: enough for %2541 and the like, and bounded.
constexpr int decode_rounds = 4;

bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Characters a key split for reading (or by mistake) may have between its digits. Brackets are not
// among them, so the "[redacted]" marker never joins the runs beside it.
bool is_separator(char c) noexcept {
  switch (c) {
    case '-':
    case '_':
    case '.':
    case ':':
    case '/':
    case ' ':
    case '\t':
    case '+':
    case ',':
    case ';':
    case '=':
    case '~':
    case '|':
      return true;
    default:
      return false;
  }
}

// `text` with %XX sequences decoded, again and again (a key encoded twice is still a key).
std::string percent_decoded(std::string_view text) {
  std::string out(text);
  for (int round = 0; round < decode_rounds && out.find('%') != std::string::npos; ++round) {
    std::string next;
    next.reserve(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      const int hi = out[i] == '%' && i + 2 < out.size() ? hex_value(out[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(out[i + 2]) : -1;
      if (lo >= 0) {
        next.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        next.push_back(out[i]);
      }
    }
    if (next == out) break;
    out = std::move(next);
  }
  return out;
}

// Copies `text` split at `delimiter`, replacing each piece that holds part of key material (a run of
// 32 or more hex digits, any case, separators allowed between them, after percent-decoding each
// piece) by "[redacted]"; at most `limit` bytes. A run may span pieces: all of them are replaced.
std::string redact(std::string_view text, char delimiter, std::size_t limit) {
  std::vector<std::string_view> pieces;
  for (std::size_t from = 0;;) {
    const auto at = text.find(delimiter, from);
    pieces.push_back(text.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
    if (at == std::string_view::npos) break;
    from = at + 1;
  }
  std::vector<bool> hide(pieces.size(), false);
  std::size_t run = 0;
  std::size_t run_from = 0;  // the piece where the current run began
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    for (char c : percent_decoded(pieces[p])) {
      if (hex_value(c) >= 0) {
        if (run++ == 0) run_from = p;
        if (run >= key_run)
          std::fill(hide.begin() + static_cast<std::ptrdiff_t>(run_from),
                    hide.begin() + static_cast<std::ptrdiff_t>(p) + 1, true);
      } else if (!is_separator(c)) {
        run = 0;
      }
    }
    // The delimiter itself is a separator when it is one (a slash, a space), and ends the run otherwise.
    if (!is_separator(delimiter)) run = 0;
  }
  std::string out;
  for (std::size_t p = 0; p < pieces.size() && out.size() < limit; ++p) {
    if (p > 0) out.push_back(delimiter);
    out.append(hide[p] ? redacted : pieces[p]);
  }
  // Pieces are judged whole before the cut, so a cut only ever shortens text that was kept anyway.
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace

bool is_sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > max_request_id_length) return false;
  for (char c : id) {
    if (!is_id_char(c)) return false;
  }
  // A client that puts its key (or part of it) into X-Request-Id would otherwise see it in every
  // log line and response.
  return !contains_key_material(id);
}

std::string new_request_id() {
  thread_local std::mt19937_64 engine{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  static constexpr char digits[] = "0123456789abcdef";
  std::string id(32, '0');
  for (std::size_t half = 0; half < 2; ++half) {
    std::uint64_t bits = engine();
    for (std::size_t i = 0; i < 16; ++i, bits >>= 4) id[half * 16 + i] = digits[bits & 0xf];
  }
  return id;
}

std::string request_id_for(std::string_view header_value) {
  if (is_sane_request_id(header_value)) return std::string(header_value);
  return new_request_id();
}

bool contains_key_material(std::string_view text) {
  // Most ids and methods hold no '%': they are judged as they are, without a copy.
  std::string decoded;
  if (text.find('%') != std::string_view::npos) {
    decoded = percent_decoded(text);
    text = decoded;
  }
  std::size_t run = 0;
  for (char c : text) {
    if (hex_value(c) >= 0) {
      if (++run >= key_run) return true;
    } else if (!is_separator(c)) {
      run = 0;
    }
  }
  return false;
}

std::string loggable_path(std::string_view target) {
  const auto end = target.find_first_of("?#");
  return redact(target.substr(0, end), '/', max_logged_path_length);
}

std::string loggable_method(std::string_view method) {
  // A method is one token: key material anywhere in it hides all of it.
  return contains_key_material(method) ? std::string(redacted) : std::string(method.substr(0, 32));
}

std::string loggable_text(std::string_view text) { return redact(text, ' ', max_logged_text_length); }

boost::json::object access_fields(const access_entry& entry) {
  boost::json::object fields;
  fields["method"] = loggable_method(entry.method);
  fields["path"] = loggable_path(entry.target);
  fields["status"] = entry.status;
  fields["duration_seconds"] = std::chrono::duration<double>(entry.duration).count();
  fields["request_id"] = entry.request_id;
  fields["bytes"] = entry.bytes;
  fields["request_bytes"] = entry.request_bytes;
  return fields;
}

}  // namespace tokend::server
