// A key's rate limit and the answer to one request under it.
//
// A limit is a token bucket: `limit` requests per `window_seconds`, refilled continuously, holding
// at most `burst` (by default `limit`). One instance decides exactly (core/rate_limiter.hpp);
// instances sharing a store exchange their admitted counts (token_store::async_share_admits).
#pragma once

#include "core/key.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace tokend::core {

struct rate_limit {
  std::uint32_t limit = 0;           // requests per window; 0: this key is not limited
  std::uint32_t window_seconds = 1;  // 1 ..= max_rate_window_seconds
  std::uint32_t burst = 0;           // the bucket's size; 0: the same as limit

  [[nodiscard]] constexpr bool unlimited() const noexcept { return limit == 0; }
  [[nodiscard]] constexpr std::uint32_t bucket() const noexcept { return burst != 0 ? burst : limit; }
  friend constexpr bool operator==(const rate_limit&, const rate_limit&) = default;
};

inline constexpr std::uint32_t max_rate_limit = 1'000'000'000;    // for limit and burst
inline constexpr std::uint32_t max_rate_window_seconds = 86'400;  // one day

// Why a limit is out of bounds (a sentence for a 400), or nullopt when it is within them.
[[nodiscard]] std::optional<std::string_view> rate_limit_problem(const rate_limit& limit) noexcept;

// The limit a key is held to: its own when it has one, else the server's default (which may be
// unlimited). A key's own {limit: 0} exempts it from the default.
[[nodiscard]] constexpr rate_limit effective_rate_limit(const std::optional<rate_limit>& own,
                                                        const rate_limit& server_default) noexcept {
  return own ? *own : server_default;
}

// Whether a key's own limit `own` (nullopt: it follows the default) is no more generous than
// `bound`: neither its rate (limit per window) nor its bucket is higher, and it is limited when
// `bound` is. Anything is within an unlimited bound.
[[nodiscard]] constexpr bool within_rate_limit(const std::optional<rate_limit>& own,
                                               const rate_limit& bound) noexcept {
  if (bound.unlimited() || !own) return true;
  if (own->unlimited()) return false;
  return std::uint64_t{own->limit} * bound.window_seconds <=
             std::uint64_t{bound.limit} * own->window_seconds &&
         own->bucket() <= bound.bucket();
}

// What a roll does to the key's own limit: the new key keeps the old one's, or gets `limit`
// (nullopt: the server's default) when `replace`.
struct rate_limit_update {
  bool replace = false;
  std::optional<rate_limit> limit;
};

// The answer to one request of a limited key.
struct rate_decision {
  bool allowed = true;
  std::uint32_t remaining = 0;            // whole requests the key may still make now
  std::uint32_t reset_seconds = 0;        // until the bucket is full again, rounded up
  std::uint32_t retry_after_seconds = 0;  // refused: until a request would be admitted, >= 1; else 0
};

// The 64-bit tag under which instances exchange a key's counts: the digest's first eight bytes
// as a big-endian integer. Not a key, and not enough of a digest to look one up by.
[[nodiscard]] constexpr std::uint64_t key_tag(const key_digest& digest) noexcept {
  std::uint64_t tag = 0;
  for (int i = 0; i < 8; ++i) tag = (tag << 8) | digest[static_cast<std::size_t>(i)];
  return tag;
}

}  // namespace tokend::core
