// The API's routes, as requests are counted and labelled in metrics.
#pragma once

#include <cstddef>

namespace tokend::server {

// verify: the gateway endpoint /verify, counted apart because it carries a whole API's traffic.
// roll: POST /api/v2/tokens/roll.
enum class route { create, list, remove, roll, verify, other };
inline constexpr std::size_t route_count = 6;

}  // namespace tokend::server
