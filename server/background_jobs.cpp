// The flush and sweep loops; see background_jobs.hpp.
#include "server/background_jobs.hpp"

#include "server/listener.hpp"
#include "server/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>

namespace tokend::server {
namespace net = boost::asio;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Runs on a storage thread when a flush's write has completed.
void log_flush_failure(boost::system::error_code ec) {
  if (ec) log::warn("writing key uses failed, kept for the next flush", {{"error", ec.message()}});
}

void log_exception(const std::exception_ptr& e) noexcept { log_failure("background job failed", e); }

// Whether the last share failed, shared with its completions (which may outlive the jobs), so that
// a database down is logged once rather than every interval.
using share_state = std::shared_ptr<std::atomic<bool>>;

void log_share_outcome(const share_state& failing, boost::system::error_code ec) {
  if (failing->exchange(static_cast<bool>(ec)) == static_cast<bool>(ec)) return;
  if (ec) {
    log::warn("sharing rate-limit counts failed, holding to a share of every limit",
              {{"error", ec.message()}});
  } else {
    log::info("sharing rate-limit counts again, whole limits");
  }
}

}  // namespace

background_jobs::background_jobs(net::io_context& ctx, token_service& service, background_intervals intervals)
    : service_(service),
      intervals_(intervals),
      context_(ctx),
      flush_timer_(ctx),
      sweep_timer_(ctx),
      rate_timer_(ctx) {
  service_.set_recording_uses(intervals_.last_used.count() > 0);
}

void background_jobs::start() {
  if (started_.exchange(true)) return;
  if (intervals_.last_used.count() > 0) net::co_spawn(context_, flush_loop(), log_exception);
  if (intervals_.sweep.count() > 0) net::co_spawn(context_, sweep_loop(), log_exception);
  net::co_spawn(context_, rate_loop(), log_exception);
}

void background_jobs::stop() {
  if (stopping_.exchange(true) || !started_.load()) return;
  // The timers belong to their context's thread; a loop between two waits sees stopping_ instead.
  net::post(context_, [this] {
    flush_timer_.cancel();
    sweep_timer_.cancel();
    rate_timer_.cancel();
  });
}

void background_jobs::final_flush() {
  if (intervals_.last_used.count() > 0) service_.flush_uses(log_flush_failure);
}

net::awaitable<void> background_jobs::flush_loop() {
  while (!stopping_.load(std::memory_order_acquire)) {
    flush_timer_.expires_after(intervals_.last_used);
    co_await flush_timer_.async_wait(use_tuple);
    if (stopping_.load(std::memory_order_acquire)) break;
    // A failure (out of memory) is logged and the next period tries again: the uses stay queued.
    try {
      service_.flush_uses(log_flush_failure);
    } catch (const std::exception& e) {
      log::error("writing key uses failed", {{"error", e.what()}});
    }
  }
}

net::awaitable<void> background_jobs::sweep_loop() {
  const std::int64_t retention_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(intervals_.retention).count();
  while (!stopping_.load(std::memory_order_acquire)) {
    sweep_timer_.expires_after(intervals_.sweep);
    co_await sweep_timer_.async_wait(use_tuple);
    if (stopping_.load(std::memory_order_acquire)) break;
    try {
      const auto removed = co_await service_.remove_expired(retention_seconds);
      if (!removed) {
        log::warn("removing expired tokens failed, retried next sweep",
                  {{"error", removed.error().message()}});
      } else if (*removed > 0) {
        log::info("expired tokens removed", {{"count", *removed}});
      }
    } catch (const std::exception& e) {
      log::error("removing expired tokens failed", {{"error", e.what()}});
    }
  }
}

net::awaitable<void> background_jobs::rate_loop() {
  const bool sharing = intervals_.rate_sync.count() > 0 && service_.store().shared();
  const std::chrono::milliseconds period = sharing ? intervals_.rate_sync : std::chrono::seconds(1);
  const share_state failing = std::make_shared<std::atomic<bool>>(false);
  while (!stopping_.load(std::memory_order_acquire)) {
    rate_timer_.expires_after(period);
    co_await rate_timer_.async_wait(use_tuple);
    if (stopping_.load(std::memory_order_acquire)) break;
    try {
      if (sharing) {
        service_.share_admits([failing](boost::system::error_code ec) { log_share_outcome(failing, ec); });
      } else {
        service_.trim_rate_limits();
      }
    } catch (const std::exception& e) {
      log::error("sharing rate-limit counts failed", {{"error", e.what()}});
    }
  }
}

}  // namespace tokend::server
