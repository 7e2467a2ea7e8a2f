// When a new key expires: from what its request asks (an absolute time or a lifetime) and the
// deployment's policy (a default lifetime and a maximum). Pure, so every rule is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tokend::core {

// Lifetimes in seconds; 0: none (no default lifetime: keys never expire unless asked; no maximum).
struct expiry_policy {
  std::int64_t default_ttl = 0;
  std::int64_t max_ttl = 0;
};

// What a request asked for; at most one of the two may be given.
struct expiry_request {
  std::optional<std::int64_t> expires_at;  // Unix seconds
  std::optional<std::int64_t> expires_in;  // seconds from now
};

struct expiry_decision {
  std::int64_t expires_at = 0;  // Unix seconds; 0: never
  std::string problem;          // why the request is refused (a 400 message); empty when accepted
  [[nodiscard]] bool ok() const noexcept { return problem.empty(); }
};

// The expiry of a key asked for at `now`. With neither field the default lifetime applies, or the
// maximum when there is no default (a maximum means every key ends). Refused: both fields, an
// `expiresAt` not after `now`, an `expiresIn` below 1, or an expiry after now + the maximum.
[[nodiscard]] expiry_decision decide_expiry(const expiry_policy& policy, const expiry_request& request,
                                            std::int64_t now);

}  // namespace tokend::core
