// token_service's rate limits beyond a request's: settings, sharing admits with the other
// processes of a store, and the operator's view of the most limited keys.
#include "server/store_await.hpp"
#include "server/token_service.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tokend::server {
namespace net = boost::asio;
using boost::system::error_code;
using boost::system::result;

namespace {

constexpr std::int64_t ns_per_second = 1'000'000'000;

}  // namespace

void token_service::set_rate_limits(rate_limit_settings settings) {
  if (!settings.clock) settings.clock = steady_nanoseconds;
  rate_settings_ = std::move(settings);
}

void token_service::share_admits(std::function<void(error_code)> done) {
  const std::int64_t now_ns = rate_settings_.clock();
  const std::vector<core::rate_limiter::admitted> drained = limiter_.drain_admitted();
  limiter_.trim(now_ns);  // after the drain: buckets full again go even if they just admitted
  // Processes gone are forgotten only while sharing works: during an outage nothing is heard from
  // anyone, and forgetting them would hand each survivor the whole limit again.
  if (limiter_.share() == 1) (void)peers_heard(now_ns);
  std::vector<storage::admitted_requests> counts;
  counts.reserve(drained.size());
  for (const auto& a : drained) counts.push_back({a.tag, a.count});
  // A failed share's counts are dropped: they were admitted under this process's whole limits, the
  // overshoot of one interval that the share then taken makes up for.
  auto sent = [this, done = std::move(done)](error_code ec) {
    shared(ec);
    if (done) done(ec);
    end_callback();  // last: the destructor may run from then on
  };
  begin_callback();
  try {
    store_.async_share_admits(std::move(counts), std::move(sent));
  } catch (...) {
    end_callback();  // not started: nothing will call back
    throw;
  }
}

void token_service::trim_rate_limits() {
  (void)limiter_.drain_admitted();  // nobody to tell; a bucket with counts to share is never trimmed
  limiter_.trim(rate_settings_.clock());
}

void token_service::shared(error_code ec) {
  if (!ec) {
    limiter_.set_share(1);
    return;
  }
  shares_failed_.fetch_add(1, std::memory_order_relaxed);
  // The others may not hear this process's admits, nor it theirs: each holds to its share.
  std::size_t others = 0;
  {
    const std::lock_guard lock(peers_mutex_);
    others = peers_.size();  // everyone heard within peer_memory_seconds of the last working share
  }
  limiter_.set_share(
      static_cast<std::uint32_t>(std::min<std::size_t>(others + 1, core::rate_limiter::max_share)));
}

void token_service::peer_admits(std::uint64_t sender, const std::vector<storage::admitted_requests>& counts) {
  const std::int64_t now_ns = rate_settings_.clock();
  {
    const std::lock_guard lock(peers_mutex_);
    peers_[sender] = now_ns;
  }
  for (const storage::admitted_requests& c : counts) limiter_.debit(c.tag, c.count, now_ns);
}

std::size_t token_service::peers_heard(std::int64_t now_ns) {
  const std::lock_guard lock(peers_mutex_);
  std::erase_if(peers_, [now_ns](const auto& peer) {
    return now_ns - peer.second >= peer_memory_seconds * ns_per_second;
  });
  return peers_.size();
}

net::awaitable<result<std::vector<token_service::limited_key>>> token_service::top_limited(std::size_t n) {
  // Every refused key in order, since some of the first may be gone: looked up until n are found.
  const std::vector<core::rate_limiter::refused_key> top = limiter_.top_refused(limiter_.size());
  std::vector<limited_key> out;
  out.reserve(std::min(n, top.size()));
  for (const core::rate_limiter::refused_key& key : top) {
    if (out.size() >= n) break;
    auto found = (co_await on_store<result<std::optional<storage::key_info>>>(
                      [this, &key](storage::token_store::lookup_handler done) {
                        store_.async_lookup(key.digest, std::move(done));
                      }))
                     .value;
    if (!found) co_return found.error();
    const std::optional<storage::key_info>& info = *found;
    if (!info) continue;  // deleted since
    out.push_back({info->owner, info->id, info->display_prefix, key.limit, key.refused, key.admitted});
  }
  co_return out;
}

}  // namespace tokend::server
