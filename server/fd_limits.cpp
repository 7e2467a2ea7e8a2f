// See fd_limits.hpp.
#include "server/fd_limits.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>
#include <string>

namespace tokend::server {
namespace {

constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

std::uint64_t as_count(rlim_t value) noexcept {
  return value == RLIM_INFINITY ? unlimited : static_cast<std::uint64_t>(value);
}

}  // namespace

descriptor_plan plan_descriptors(std::uint64_t limit, const config& cfg) {
  descriptor_plan plan;
  plan.limit = limit;
  plan.admin_max_connections = cfg.admin_max_connections;
  std::size_t store = 0;
  if (cfg.store == store_kind::rocksdb) {
    const std::uint64_t files = std::clamp<std::uint64_t>(limit / 4, 64, 1024);
    plan.rocksdb_max_open_files = static_cast<int>(files);
    store = static_cast<std::size_t>(files) + rocksdb_other_files;
  } else {
    // The pool, the LISTEN connection, and a cancel request's connection now and then.
    store = cfg.postgres_connections + 1 + 4;
  }
  plan.reserved = base_descriptors + descriptors_per_thread * cfg.threads + store + cfg.admin_max_connections;
  const std::uint64_t room = limit > plan.reserved ? limit - plan.reserved : 0;
  if (room < min_api_connections) {
    throw config_error("the file-descriptor limit (" + std::to_string(limit) + ") is too low: " +
                       std::to_string(plan.reserved) + " are needed besides API connections, and at least " +
                       std::to_string(min_api_connections) + " for them; raise it (ulimit -n)");
  }
  plan.clamped = room < cfg.max_connections;
  plan.max_connections = plan.clamped ? static_cast<std::size_t>(room) : cfg.max_connections;
  return plan;
}

raised_limit raise_descriptor_limit() noexcept {
  rlimit current{};
  if (::getrlimit(RLIMIT_NOFILE, &current) != 0) return {};
  raised_limit out{as_count(current.rlim_cur), as_count(current.rlim_cur)};
  if (current.rlim_cur == current.rlim_max) return out;
  rlimit wanted = current;
  wanted.rlim_cur = current.rlim_max;
  // An unlimited hard limit is still bounded by the kernel (fs.nr_open): ask for a million then.
  if (::setrlimit(RLIMIT_NOFILE, &wanted) != 0 && current.rlim_max == RLIM_INFINITY) {
    wanted.rlim_cur = std::max<rlim_t>(current.rlim_cur, rlim_t{1} << 20);
    if (::setrlimit(RLIMIT_NOFILE, &wanted) != 0) return out;
  }
  if (::getrlimit(RLIMIT_NOFILE, &current) == 0) out.after = as_count(current.rlim_cur);
  return out;
}

}  // namespace tokend::server
