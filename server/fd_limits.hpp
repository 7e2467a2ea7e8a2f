// The process's file-descriptor budget. At start the soft RLIMIT_NOFILE is raised to the hard
// limit, and the API connection cap is lowered so that it is reached before the limit is: past
// the limit accept() fails with EMFILE, the connection stays in the backlog, and nobody is served
// or told so (the admin listener's probes included). What is not for API connections is reserved:
// the store's files or connections, the admin listener's own cap, the io threads, stdio and logs.
#pragma once

#include "server/config.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

namespace tokend::server {

// Descriptors besides connections and the store: stdio, the two listeners, the signal pipe, the
// random device, files opened by libraries, with room to spare.
inline constexpr std::size_t base_descriptors = 32;
// An epoll descriptor and an eventfd per io context, and a timerfd, with one to spare.
inline constexpr std::size_t descriptors_per_thread = 4;
// RocksDB's files outside its table cache: WAL, MANIFEST, CURRENT, LOCK, OPTIONS, the directory,
// and the output files of a flush and a compaction.
inline constexpr std::size_t rocksdb_other_files = 16;
// Fewer API connections than this is a misconfiguration worth refusing to start for.
inline constexpr std::size_t min_api_connections = 16;

struct descriptor_plan {
  std::uint64_t limit = 0;          // the soft RLIMIT_NOFILE the plan was made for
  std::size_t reserved = 0;         // descriptors kept from API connections
  std::size_t max_connections = 0;  // the effective API cap
  std::size_t admin_max_connections = 0;
  int rocksdb_max_open_files = -1;  // RocksDB's table cache bound (-1 for another store)
  bool clamped = false;             // the configured API cap did not fit
};

// Pure: the plan for `cfg` under a soft limit of `limit` descriptors (UINT64_MAX: unlimited).
// RocksDB keeps a quarter of the limit for its table files, between 64 and 1024. Throws
// config_error when fewer than min_api_connections would remain.
[[nodiscard]] descriptor_plan plan_descriptors(std::uint64_t limit, const config& cfg);

struct raised_limit {
  std::uint64_t before = 0;  // UINT64_MAX: unlimited
  std::uint64_t after = 0;
};

// Raises the soft RLIMIT_NOFILE as far as the hard limit (and the kernel) allow.
[[nodiscard]] raised_limit raise_descriptor_limit() noexcept;

// How an accept loop meets failing accepts (EMFILE, ENFILE, ENOBUFS): a pause that doubles from
// min_delay to max_delay while they last, and a warning at most every log_interval that says how
// many failures went unlogged meanwhile. One per accept loop; not thread-safe.
class accept_failure_backoff {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr clock::duration min_delay = std::chrono::milliseconds(10);
  static constexpr clock::duration max_delay = std::chrono::seconds(1);
  static constexpr clock::duration log_interval = std::chrono::seconds(10);

  // A failure at `now`. When it is to be logged, the number of failures not logged before it.
  [[nodiscard]] std::optional<std::uint64_t> failed(clock::time_point now) noexcept {
    delay_ = streak_ ? std::min<clock::duration>(delay_ * 2, max_delay) : min_delay;
    streak_ = true;
    if (logged_ && now - last_logged_ < log_interval) {
      ++unlogged_;
      return std::nullopt;
    }
    logged_ = true;
    last_logged_ = now;
    return std::exchange(unlogged_, 0);
  }
  // The pause before the next accept.
  [[nodiscard]] clock::duration delay() const noexcept { return delay_; }
  void succeeded() noexcept { streak_ = false; }

 private:
  clock::duration delay_ = min_delay;
  bool streak_ = false;
  bool logged_ = false;
  clock::time_point last_logged_{};
  std::uint64_t unlogged_ = 0;
};

}  // namespace tokend::server
