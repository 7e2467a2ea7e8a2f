// A key's own rate limit as the PostgreSQL store's statements take it (text parameters) and give it
// back (result cells); shared by the worker's statement families.
#pragma once

#include "core/rate_limit.hpp"
#include "storage/pg_connection.hpp"

#include <optional>
#include <string>

namespace tokend::storage::pg {

// A key's own rate limit as three text parameters (limit, window, burst), each "" for none: the
// statements read "" as NULL, which a parameter of this connection cannot carry.
struct rate_limit_text {
  std::string limit, window, burst;
};
[[nodiscard]] rate_limit_text rate_text(const std::optional<core::rate_limit>& limit);

// The rate limit of three cells (limit, window, burst), an empty limit meaning none. False when a
// cell holds something no limit has.
[[nodiscard]] bool parse_rate_limit(const reply& r, int row, int column,
                                    std::optional<core::rate_limit>& out);

}  // namespace tokend::storage::pg
