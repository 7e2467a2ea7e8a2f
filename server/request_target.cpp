// Origin-form checked by table; see request_target.hpp.
#include "server/request_target.hpp"

#include "server/text_rules.hpp"

#include <array>
#include <cstddef>
#include <string_view>

namespace tokend::server {
namespace {

// The characters a part may hold as they are: RFC 3986's pchar without pct-encoded (unreserved,
// sub-delims, ':' and '@'), plus `extra`.
constexpr std::array<bool, 256> allowed(std::string_view extra) {
  std::array<bool, 256> table{};
  for (char c = 'a'; c <= 'z'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c = 'A'; c <= 'Z'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c = '0'; c <= '9'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (const char c : std::string_view("-._~!$&'()*+,;=:@")) table[static_cast<unsigned char>(c)] = true;
  for (const char c : extra) table[static_cast<unsigned char>(c)] = true;
  return table;
}

constexpr auto path_chars = allowed("/");
constexpr auto query_chars = allowed("/?");

bool well_formed(std::string_view part, const std::array<bool, 256>& chars) noexcept {
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (chars[static_cast<unsigned char>(part[i])]) continue;
    if (part[i] != '%' || i + 2 >= part.size() || text::hex_value(part[i + 1]) < 0 ||
        text::hex_value(part[i + 2]) < 0)
      return false;
    i += 2;
  }
  return true;
}

}  // namespace

std::optional<request_target> parse_request_target(std::string_view target) noexcept {
  if (target.empty() || target.front() != '/') return std::nullopt;
  const auto question = target.find('?');
  request_target parts{target.substr(0, question), std::nullopt};
  if (!well_formed(parts.path, path_chars)) return std::nullopt;
  if (question != std::string_view::npos) {
    parts.query = target.substr(question + 1);
    if (!well_formed(*parts.query, query_chars)) return std::nullopt;
  }
  return parts;
}

}  // namespace tokend::server
