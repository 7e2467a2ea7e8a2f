// Request ids and access-log fields; see request_log.hpp.
#include "server/request_log.hpp"

#include "core/key.hpp"

#include <algorithm>
#include <cstdint>
#include <random>

namespace tokend::server {
namespace {

constexpr std::size_t redact_hex_run = 32;
constexpr std::string_view redacted = "[redacted]";

bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Copies `text`, replacing hex runs of `redact_hex_run` or more characters, up to `limit` bytes.
std::string redact(std::string_view text, std::size_t limit) {
  std::string out;
  out.reserve(std::min(text.size(), limit));
  std::size_t i = 0;
  while (i < text.size() && out.size() < limit) {
    std::size_t run = 0;
    while (i + run < text.size() && is_hex(text[i + run])) ++run;
    if (run >= redact_hex_run) {
      out += redacted;
      i += run;
    } else if (run > 0) {
      out.append(text.substr(i, run));
      i += run;
    } else {
      out.push_back(text[i++]);
    }
  }
  // Runs are measured whole before the cut, so a cut only ever shortens text that was kept anyway.
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace

bool is_sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > max_request_id_length) return false;
  for (char c : id) {
    if (!is_id_char(c)) return false;
  }
  // A client that puts its key into X-Request-Id would otherwise see it in every log line.
  return !core::is_well_formed_key(id);
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

std::string loggable_path(std::string_view target) {
  const auto end = target.find_first_of("?#");
  return redact(target.substr(0, end), max_logged_path_length);
}

std::string loggable_method(std::string_view method) { return redact(method, 32); }

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
