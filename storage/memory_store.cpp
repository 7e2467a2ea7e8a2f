// The in-memory token store: the RocksDB store's semantics without a disk, for tests and fuzzers.
#include "storage/memory_store.hpp"

#include "core/error.hpp"
#include "storage/store_lifecycle.hpp"
#include "storage/store_stats.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

class memory_store final : public token_store {
 public:
  explicit memory_store(std::size_t max_queue) : max_queue_(max_queue) {}
  ~memory_store() override { close(); }

  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    run(std::move(handler), [this, digest]() -> boost::system::result<std::optional<core::user_id>> {
      const std::lock_guard lock(data_mutex_);
      const auto it = records_.find(digest);
      if (it == records_.end()) return std::optional<core::user_id>{};
      return std::optional<core::user_id>{it->second.record.owner};
    });
  }

  void async_create(core::token_record record, write_handler handler) override {
    run_write(std::move(handler), [this, record = std::move(record)]() -> error_code {
      const error_code ec = create(record);
      count_write();
      return ec;
    });
  }

  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    run(std::move(handler), [this, owner, offset, limit]() -> boost::system::result<list_page> {
      const std::lock_guard lock(data_mutex_);
      list_page page;
      auto it = index_.lower_bound({owner, 0});
      const auto end = index_.upper_bound({owner, std::numeric_limits<std::uint64_t>::max()});
      auto in_range = [&] { return it != end; };
      for (std::size_t skipped = 0; skipped < offset && in_range(); ++skipped) ++it;
      for (; in_range() && page.tokens.size() < limit; ++it)
        page.tokens.push_back(records_.at(it->second).record);
      page.has_more = in_range();
      return page;
    });
  }

  void async_remove(core::user_id owner, const core::key_digest& digest, write_handler handler) override {
    run_write(std::move(handler), [this, owner, digest]() -> error_code {
      const error_code ec = remove(owner, digest);
      count_write();
      return ec;
    });
  }

  [[nodiscard]] bool ready() const noexcept override { return !lifecycle_.closing(); }

  [[nodiscard]] boost::system::result<bool> empty() override {
    boost::system::result<bool> result(boost::system::in_place_error, error(core::errc::unavailable));
    (void)lifecycle_.while_open([&] {
      const std::lock_guard lock(data_mutex_);
      result = records_.empty();
    });
    return result;
  }

  [[nodiscard]] store_stats stats() const override {
    return counters_.snapshot(pending_writes_.load(std::memory_order_relaxed));
  }

  void close() override {
    lifecycle_.close([this] { pool_.join(); });  // runs everything already posted, then the thread ends
  }

 private:
  struct entry {
    core::token_record record;
    std::uint64_t sequence = 0;
  };

  // Runs `operation` on the store's thread and passes its result to `handler` there. After close
  // there is no thread left, so the refusal runs on the caller's thread.
  template <class Handler, class Operation>
  void run(Handler handler, Operation operation, bool is_write = false) {
    const bool open = lifecycle_.while_open([&] {
      if (is_write && !reserve_write()) {
        // Refused at once, but on the store's thread, as the RocksDB store does.
        net::post(pool_, [handler = std::move(handler)] { handler(error(core::errc::overloaded)); });
        return;
      }
      net::post(pool_,
                [handler = std::move(handler), operation = std::move(operation)] { handler(operation()); });
    });
    if (!open) handler(error(core::errc::unavailable));
  }

  // Counts one more waiting write unless max_queue are waiting already.
  [[nodiscard]] bool reserve_write() noexcept {
    std::uint64_t pending = pending_writes_.load(std::memory_order_relaxed);
    do {
      if (pending >= max_queue_) return false;
    } while (!pending_writes_.compare_exchange_weak(pending, pending + 1, std::memory_order_relaxed));
    return true;
  }

  template <class Operation>
  void run_write(write_handler handler, Operation operation) {
    run(std::move(handler), std::move(operation), true);
  }

  [[nodiscard]] error_code create(const core::token_record& record) {
    const std::lock_guard lock(data_mutex_);
    // Same rule as the RocksDB store: an existing digest is never overwritten.
    if (records_.contains(record.digest)) return error(core::errc::internal);
    const std::uint64_t sequence = next_sequence_++;
    records_.emplace(record.digest, entry{record, sequence});
    index_.emplace(std::pair{record.owner, sequence}, record.digest);
    return {};
  }

  [[nodiscard]] error_code remove(core::user_id owner, const core::key_digest& digest) {
    const std::lock_guard lock(data_mutex_);
    const auto it = records_.find(digest);
    if (it == records_.end() || it->second.record.owner != owner) return error(core::errc::not_found);
    index_.erase({owner, it->second.sequence});
    records_.erase(it);
    return {};
  }

  // Every write is its own batch of one here.
  void count_write() noexcept {
    pending_writes_.fetch_sub(1, std::memory_order_relaxed);
    counters_.count_batch(1);
  }

  const std::size_t max_queue_;

  mutable std::mutex data_mutex_;
  std::unordered_map<core::key_digest, entry, core::key_digest_hash> records_;
  std::map<std::pair<core::user_id, std::uint64_t>, core::key_digest> index_;  // creation order per owner
  std::uint64_t next_sequence_ = 0;

  store_lifecycle lifecycle_;  // close() cannot race a post

  std::atomic<std::uint64_t> pending_writes_{0};
  batch_counters counters_;

  net::thread_pool pool_{1};  // last: destroyed (and joined) before the state its tasks use
};

}  // namespace

std::unique_ptr<token_store> make_memory_store(std::size_t max_queue) {
  return std::make_unique<memory_store>(max_queue);
}

}  // namespace tokend::storage
