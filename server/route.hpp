// The API's routes, as requests are counted and labelled in metrics.
#pragma once

#include <cstddef>

namespace tokend::server {

// verify: the gateway endpoint /verify, counted apart because it carries a whole API's traffic.
enum class route { create, list, remove, verify, other };
inline constexpr std::size_t route_count = 5;

}  // namespace tokend::server
