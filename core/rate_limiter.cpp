// Token buckets in exact integer arithmetic; see rate_limiter.hpp.
//
// A bucket's level counts units such that one request costs window_ns * share units and time adds
// `limit` units per nanosecond: the refill is exact whatever limit/window is, with no rounding.
// The widest values (a burst of 1e9 requests of a one-day window is about 2^76 units, plus debts)
// need 128-bit integers.
#include "core/rate_limiter.hpp"

#include <algorithm>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace tokend::core {
namespace {

// A typedef: -Wpedantic accepts __int128 after __extension__, which an alias declaration cannot take.
__extension__ typedef __int128 units;

constexpr std::int64_t ns_per_second = 1'000'000'000;
// Debts stop growing here, far beyond anything other instances can admit, so nothing overflows.
constexpr units min_level = -(units{1} << 120);
// Counts of keys not seen here are kept a day, the longest window, then dropped by trim().
constexpr std::int64_t unseen_key_keep_ns = std::int64_t{max_rate_window_seconds} * ns_per_second;
// Requests other instances admitted of a key not seen here yet; more makes no difference.
constexpr std::uint64_t max_pending = std::uint64_t{1} << 40;

// A limit under a share, in units.
struct params {
  units cost;    // of one request
  units cap;     // the bucket's size
  units refill;  // per nanosecond
};

params params_of(const rate_limit& limit, std::uint32_t share) {
  const units window_ns = units{std::max<std::uint32_t>(limit.window_seconds, 1)} * ns_per_second;
  const units cost = window_ns * share;
  const std::uint32_t requests = std::max<std::uint32_t>(limit.bucket() / share, 1);
  return {cost, cost * requests, units{limit.limit}};
}

std::uint32_t clamp_u32(units v) {
  return static_cast<std::uint32_t>(std::clamp<units>(v, 0, std::numeric_limits<std::uint32_t>::max()));
}

// A level computed in long double, bounded before it is converted: a deep debt re-scaled to a much
// dearer request would not fit in 128 bits, and converting it as it is would be undefined.
units to_level(long double v, units cap) {
  return static_cast<units>(
      std::clamp(v, static_cast<long double>(min_level), static_cast<long double>(cap)));
}

units ceil_div(units a, units b) { return a <= 0 ? 0 : (a + b - 1) / b; }

struct bucket {
  units level = 0;           // may be negative: a debt to other instances, paid back by waiting
  std::int64_t last_ns = 0;  // when `level` was last brought up to date
  key_digest digest{};
  user_id owner = 0;
  // The limit and share the bucket last ran under. An unlimited `limit`: no request of the key was
  // seen here yet, only other instances' counts (`pending`).
  rate_limit limit{};
  std::uint32_t share = 1;
  std::uint32_t unshared = 0;  // admitted since the last drain
  std::uint64_t pending = 0;   // other instances' admits before this instance saw the key
  std::uint64_t refused = 0;
  std::uint64_t admitted = 0;

  [[nodiscard]] bool seen() const noexcept { return !limit.unlimited(); }

  // The level at `now_ns` under the bucket's own limit and share, without changing it.
  [[nodiscard]] units level_at(const params& p, std::int64_t now_ns) const noexcept {
    if (now_ns <= last_ns || level >= p.cap) return level;
    return std::min(p.cap, level + (units{now_ns} - last_ns) * p.refill);
  }
  void refill(const params& p, std::int64_t now_ns) noexcept {
    level = level_at(p, now_ns);
    last_ns = std::max(last_ns, now_ns);
  }
  // How full the bucket is at `now_ns`; an unseen key's counts go first when room is needed.
  [[nodiscard]] long double fullness(std::int64_t now_ns) const noexcept {
    if (!seen()) return 2;
    const params p = params_of(limit, share);
    return static_cast<long double>(level_at(p, now_ns)) / static_cast<long double>(p.cap);
  }

  // Brings the bucket to `now_ns` under `to` and `to_share`: a first request starts it full less
  // what other instances already admitted; a changed limit keeps the requests taken, a changed
  // share how full the bucket was.
  void run_under(const rate_limit& to, std::uint32_t to_share, std::int64_t now_ns) noexcept {
    const params next = params_of(to, to_share);
    if (!seen()) {
      level = std::max(min_level, next.cap - units(pending) * next.cost);
      pending = 0;
    } else if (limit != to || share != to_share) {
      const params before = params_of(limit, share);
      refill(before, now_ns);
      if (level >= before.cap) {
        level = next.cap;
      } else if (limit != to) {
        // An operator's new limit: the requests taken from the bucket stay taken, so a raised
        // limit has its extra room at once and a lowered one may leave the key waiting.
        const long double taken =
            static_cast<long double>(before.cap - level) / static_cast<long double>(before.cost);
        const long double left =
            static_cast<long double>(next.cap) - taken * static_cast<long double>(next.cost);
        level = to_level(left, next.cap);
      } else {
        const long double scaled = static_cast<long double>(level) * static_cast<long double>(next.cap) /
                                   static_cast<long double>(before.cap);
        level = to_level(scaled, next.cap);
      }
    }
    limit = to;
    share = to_share;
    refill(next, now_ns);
  }
};

}  // namespace

struct alignas(64) rate_limiter::shard {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, bucket> map;  // by key_tag
  std::size_t capacity = 1;
  std::vector<std::pair<long double, std::uint64_t>> scratch;  // make_room's, kept for reuse

  // Caller holds the mutex. The key's bucket, made (for a key not seen before: empty, last_ns at
  // now_ns) after dropping the fullest buckets when the shard is full.
  bucket& find_or_make(std::uint64_t tag, std::int64_t now_ns) {
    if (const auto it = map.find(tag); it != map.end()) return it->second;
    if (map.size() >= capacity) make_room(now_ns);
    bucket& b = map[tag];
    b.last_ns = now_ns;
    return b;
  }

  // Drops the fullest sixteenth (at least one) of the buckets: their keys lose least by starting
  // full again, and one scan makes room for many new keys.
  void make_room(std::int64_t now_ns) {
    scratch.clear();
    scratch.reserve(map.size());
    for (const auto& [tag, b] : map) scratch.emplace_back(b.fullness(now_ns), tag);
    const std::size_t drop = std::max<std::size_t>(map.size() / 16, 1);
    std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(drop - 1), scratch.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < drop; ++i) map.erase(scratch[i].second);
  }
};

rate_limiter::rate_limiter(std::size_t capacity, std::size_t shard_count)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      shard_count_(std::clamp<std::size_t>(shard_count, 1, capacity_)),
      shards_(std::make_unique<shard[]>(shard_count_)) {
  for (std::size_t i = 0; i < shard_count_; ++i) {
    // Spread the remainder so the shards add up to exactly the capacity.
    shards_[i].capacity = capacity_ / shard_count_ + (i < capacity_ % shard_count_ ? 1 : 0);
  }
}

rate_limiter::~rate_limiter() = default;

rate_limiter::shard& rate_limiter::shard_for(std::uint64_t tag) const noexcept {
  // The high bits pick the shard; the map hashes the whole tag.
  return shards_[(tag >> 40) % shard_count_];
}

rate_decision rate_limiter::admit(const key_digest& digest, user_id owner, const rate_limit& limit,
                                  std::int64_t now_ns) {
  if (limit.unlimited()) return {};
  const std::uint32_t share = share_.load(std::memory_order_relaxed);
  const std::uint64_t tag = key_tag(digest);
  shard& s = shard_for(tag);
  const std::lock_guard lock(s.mutex);
  bucket& b = s.find_or_make(tag, now_ns);
  // Two keys whose digests share their first 64 bits: the later one takes the bucket over.
  if (b.seen() && b.digest != digest) b = bucket{.last_ns = now_ns};
  b.digest = digest;
  b.owner = owner;
  b.run_under(limit, share, now_ns);

  const params p = params_of(limit, share);
  rate_decision d;
  d.allowed = b.level >= p.cost;
  if (d.allowed) {
    b.level -= p.cost;
    ++b.admitted;
    if (b.unshared < std::numeric_limits<std::uint32_t>::max()) ++b.unshared;
  } else {
    ++b.refused;
  }
  const units per_second = p.refill * ns_per_second;
  d.remaining = clamp_u32(b.level / p.cost);
  d.reset_seconds = clamp_u32(ceil_div(p.cap - b.level, per_second));
  if (!d.allowed)
    d.retry_after_seconds = std::max<std::uint32_t>(clamp_u32(ceil_div(p.cost - b.level, per_second)), 1);
  return d;
}

void rate_limiter::reconfigure(const key_digest& digest, const rate_limit& limit, std::int64_t now_ns) {
  const std::uint64_t tag = key_tag(digest);
  shard& s = shard_for(tag);
  const std::lock_guard lock(s.mutex);
  const auto it = s.map.find(tag);
  if (it == s.map.end() || !it->second.seen() || it->second.digest != digest) return;
  if (limit.unlimited()) {
    s.map.erase(it);
    return;
  }
  it->second.run_under(limit, share_.load(std::memory_order_relaxed), now_ns);
}

void rate_limiter::debit(std::uint64_t tag, std::uint32_t count, std::int64_t now_ns) {
  if (count == 0) return;
  shard& s = shard_for(tag);
  const std::lock_guard lock(s.mutex);
  bucket& b = s.find_or_make(tag, now_ns);
  if (!b.seen()) {
    // Kept until the key's first request here, which starts its bucket that much emptier.
    b.pending = std::min(b.pending + count, max_pending);
    b.last_ns = std::max(b.last_ns, now_ns);
    return;
  }
  const params p = params_of(b.limit, b.share);
  b.refill(p, now_ns);
  b.level = std::max(min_level, b.level - units{count} * p.cost);
}

std::vector<rate_limiter::admitted> rate_limiter::drain_admitted() {
  std::vector<admitted> out;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    shard& s = shards_[i];
    const std::lock_guard lock(s.mutex);
    for (auto& [tag, b] : s.map) {
      if (b.unshared == 0) continue;
      out.push_back({tag, b.unshared});
      b.unshared = 0;
    }
  }
  return out;
}

void rate_limiter::set_share(std::uint32_t instances) noexcept {
  share_.store(std::clamp<std::uint32_t>(instances, 1, max_share), std::memory_order_relaxed);
}

std::uint32_t rate_limiter::share() const noexcept { return share_.load(std::memory_order_relaxed); }

void rate_limiter::trim(std::int64_t now_ns) {
  for (std::size_t i = 0; i < shard_count_; ++i) {
    shard& s = shards_[i];
    const std::lock_guard lock(s.mutex);
    std::erase_if(s.map, [now_ns](const auto& entry) {
      const bucket& b = entry.second;
      if (!b.seen()) return units{now_ns} - b.last_ns >= unseen_key_keep_ns;
      const params p = params_of(b.limit, b.share);
      return b.unshared == 0 && b.level_at(p, now_ns) >= p.cap;
    });
  }
}

std::vector<rate_limiter::refused_key> rate_limiter::top_refused(std::size_t n) const {
  std::vector<refused_key> out;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    shard& s = shards_[i];
    const std::lock_guard lock(s.mutex);
    for (const auto& [tag, b] : s.map) {
      if (b.refused > 0) out.push_back({b.digest, b.owner, b.limit, b.refused, b.admitted});
    }
  }
  const auto more = [](const refused_key& a, const refused_key& b) {
    if (a.refused != b.refused) return a.refused > b.refused;
    if (a.admitted != b.admitted) return a.admitted > b.admitted;
    return a.digest < b.digest;
  };
  const std::size_t keep = std::min(n, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(keep), out.end(), more);
  out.resize(keep);
  return out;
}

std::size_t rate_limiter::size() const noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    const std::lock_guard lock(shards_[i].mutex);
    total += shards_[i].map.size();
  }
  return total;
}

}  // namespace tokend::core
