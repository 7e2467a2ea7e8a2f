// Expiry rules; see expiry_policy.hpp.
#include "core/expiry_policy.hpp"

#include <limits>
#include <string>
#include <utility>

namespace tokend::core {
namespace {

constexpr std::int64_t max_seconds = std::numeric_limits<std::int64_t>::max();

// now + seconds, or nullopt when the sum does not fit (no clock reaches it: the request is absurd).
std::optional<std::int64_t> after(std::int64_t now, std::int64_t seconds) {
  if (seconds > max_seconds - now) return std::nullopt;
  return now + seconds;
}

expiry_decision refused(std::string why) { return {0, std::move(why)}; }

}  // namespace

expiry_decision decide_expiry(const expiry_policy& policy, const expiry_request& request, std::int64_t now) {
  if (request.expires_at && request.expires_in) {
    return refused("Give either 'expiresAt' or 'expiresIn', not both");
  }
  std::int64_t expires_at = 0;
  if (request.expires_at) {
    if (*request.expires_at <= now) return refused("Field 'expiresAt' must be in the future (Unix seconds)");
    expires_at = *request.expires_at;
  } else if (request.expires_in) {
    if (*request.expires_in < 1) return refused("Field 'expiresIn' must be at least 1 (seconds)");
    const auto at = after(now, *request.expires_in);
    if (!at) return refused("Field 'expiresIn' is too large");
    expires_at = *at;
  } else {
    const std::int64_t ttl = policy.default_ttl != 0 ? policy.default_ttl : policy.max_ttl;
    if (ttl == 0) return {0, {}};
    return {after(now, ttl).value_or(0), {}};
  }
  if (policy.max_ttl != 0 && expires_at - now > policy.max_ttl) {
    return refused("Expiry is beyond the maximum lifetime of " + std::to_string(policy.max_ttl) +
                   " seconds from now");
  }
  return {expires_at, {}};
}

}  // namespace tokend::core
