// The API's routes, as requests are counted and labelled in metrics.
#pragma once

#include <cstddef>

namespace tokend::server {

// verify: the gateway endpoint /verify, counted apart because it carries a whole API's traffic.
// roll: POST /api/v2/tokens/roll. update: PATCH /api/v2/tokens (a key's rate limit).
// limited: GET /api/v2/tokens/limited (the operator's view of the keys refused most).
// quota: GET and PUT /api/v2/tokens/quota (a user's count of tokens and its bound).
enum class route { create, list, remove, roll, verify, update, limited, quota, other };
inline constexpr std::size_t route_count = 9;

}  // namespace tokend::server
