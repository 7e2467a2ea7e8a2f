// The PostgreSQL store's rate-limit payloads; see postgres_admits.hpp.
#include "storage/postgres_admits.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <random>
#include <unordered_map>
#include <utility>

namespace tokend::storage::pg {
namespace {

constexpr std::size_t hex_width = 16;
constexpr std::size_t header_bytes = hex_width + 1;  // the sender and a space
constexpr std::size_t most_count_digits = 10;        // 4294967295
constexpr char hex_digits[] = "0123456789abcdef";

void append_hex(std::string& out, std::uint64_t value) {
  for (int shift = 60; shift >= 0; shift -= 4) out += hex_digits[(value >> shift) & 0xF];
}

// Exactly 16 lowercase hex digits: the one spelling sent, so anything else is not a peer's.
[[nodiscard]] bool parse_hex(std::string_view text, std::uint64_t& out) noexcept {
  if (text.size() != hex_width) return false;
  std::uint64_t value = 0;
  for (const char c : text) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  out = value;
  return true;
}

// "<16 hex>:<1 to 10 digits>" whose count fits 32 bits.
[[nodiscard]] bool parse_entry(std::string_view text, admitted_requests& out) noexcept {
  if (text.size() < hex_width + 2 || text[hex_width] != ':') return false;
  const std::string_view digits = text.substr(hex_width + 1);
  if (digits.size() > most_count_digits) return false;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  std::uint64_t count = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (ec != std::errc{} || end != digits.data() + digits.size() ||
      count > std::numeric_limits<std::uint32_t>::max())
    return false;
  out.count = static_cast<std::uint32_t>(count);
  return parse_hex(text.substr(0, hex_width), out.tag);
}

}  // namespace

std::uint64_t random_sender_id() {
  std::random_device device;
  const auto high = static_cast<std::uint64_t>(device());
  const auto low = static_cast<std::uint64_t>(device());
  return (high << 32) ^ low;
}

std::optional<peer_admits> parse_admits(std::string_view payload) {
  if (payload.size() > admits_payload_bytes || payload.size() < header_bytes + 1 || payload[hex_width] != ' ')
    return std::nullopt;
  peer_admits out;
  if (!parse_hex(payload.substr(0, hex_width), out.sender)) return std::nullopt;
  std::string_view rest = payload.substr(header_bytes);
  // Each entry takes at least 19 bytes with its comma: the payload's length bounds the work.
  out.counts.reserve(rest.size() / (hex_width + 3) + 1);
  for (;;) {
    const std::size_t comma = rest.find(',');
    admitted_requests entry;
    if (!parse_entry(rest.substr(0, comma), entry)) return std::nullopt;
    out.counts.push_back(entry);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

std::vector<std::string> admits_outbox::take(const std::vector<admitted_requests>& counts) {
  // Merge: what waited first (it is older), then the new counts, one entry per key.
  std::vector<admitted_requests> all = std::move(waiting_);
  waiting_.clear();
  std::unordered_map<std::uint64_t, std::size_t> where;
  where.reserve(all.size() + counts.size());
  for (std::size_t i = 0; i < all.size(); ++i) where.emplace(all[i].tag, i);
  for (const admitted_requests& c : counts) {
    if (c.count == 0) continue;
    const auto [it, added] = where.try_emplace(c.tag, all.size());
    if (added) {
      all.push_back(c);
      continue;
    }
    std::uint32_t& sum = all[it->second].count;
    sum = c.count > std::numeric_limits<std::uint32_t>::max() - sum
              ? std::numeric_limits<std::uint32_t>::max()
              : sum + c.count;
  }

  std::vector<std::string> payloads;
  std::size_t next = 0;
  while (next < all.size() && payloads.size() < admits_payloads_per_call) {
    std::string payload;
    payload.reserve(admits_payload_bytes);
    append_hex(payload, sender_);
    payload += ' ';
    for (bool first = true; next < all.size(); first = false, ++next) {
      std::array<char, most_count_digits> digits{};
      const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), all[next].count);
      (void)ec;  // ten digits hold any 32-bit count
      const auto used = static_cast<std::size_t>(end - digits.data());
      if (payload.size() + (first ? 0 : 1) + hex_width + 1 + used > admits_payload_bytes) break;
      if (!first) payload += ',';
      append_hex(payload, all[next].tag);
      payload += ':';
      payload.append(digits.data(), used);
    }
    payloads.push_back(std::move(payload));
  }
  const std::size_t keep = std::min(all.size() - next, admits_waiting_keys);
  dropped_ += all.size() - next - keep;
  waiting_.assign(all.begin() + static_cast<std::ptrdiff_t>(next),
                  all.begin() + static_cast<std::ptrdiff_t>(next + keep));
  return payloads;
}

}  // namespace tokend::storage::pg
