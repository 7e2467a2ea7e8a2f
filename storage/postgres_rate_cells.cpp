// A key's own rate limit as statement parameters and result cells; see postgres_rate_cells.hpp.
#include "storage/postgres_rate_cells.hpp"

#include "storage/pg_text.hpp"

namespace tokend::storage::pg {

rate_limit_text rate_text(const std::optional<core::rate_limit>& limit) {
  if (!limit) return {};
  return {std::to_string(limit->limit), std::to_string(limit->window_seconds), std::to_string(limit->burst)};
}

bool parse_rate_limit(const reply& r, int row, int column, std::optional<core::rate_limit>& out) {
  out.reset();
  if (r.cell(row, column).empty()) return true;
  core::rate_limit limit;
  if (!parse_integer(r.cell(row, column), limit.limit) ||
      !parse_integer(r.cell(row, column + 1), limit.window_seconds) ||
      !parse_integer(r.cell(row, column + 2), limit.burst))
    return false;
  out = limit;
  return true;
}

}  // namespace tokend::storage::pg
