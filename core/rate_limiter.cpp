// STUB: admits every request; see rate_limiter.hpp for what it must do.
#include "core/rate_limiter.hpp"

#include <algorithm>

namespace tokend::core {

struct rate_limiter::shard {};

rate_limiter::rate_limiter(std::size_t capacity, std::size_t shard_count)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      shard_count_(std::max<std::size_t>(shard_count, 1)),
      shards_(std::make_unique<shard[]>(shard_count_)) {}

rate_limiter::~rate_limiter() = default;

rate_decision rate_limiter::admit(const key_digest& digest, user_id owner, const rate_limit& limit,
                                  std::int64_t now_ns) {
  (void)digest;
  (void)owner;
  (void)now_ns;
  return {true, limit.bucket(), 0, 0};
}

void rate_limiter::debit(std::uint64_t tag, std::uint32_t count, std::int64_t now_ns) {
  (void)tag;
  (void)count;
  (void)now_ns;
}

std::vector<rate_limiter::admitted> rate_limiter::drain_admitted() { return {}; }

void rate_limiter::set_share(std::uint32_t instances) noexcept { (void)instances; }

std::uint32_t rate_limiter::share() const noexcept { return 1; }

void rate_limiter::trim(std::int64_t now_ns) { (void)now_ns; }

std::vector<rate_limiter::refused_key> rate_limiter::top_refused(std::size_t n) const {
  (void)n;
  return {};
}

std::size_t rate_limiter::size() const noexcept { return 0; }

}  // namespace tokend::core
