// The in-memory token store: the RocksDB store's semantics without a disk, for tests and fuzzers.
#include "storage/memory_store.hpp"

#include "core/error.hpp"
#include "storage/store_lifecycle.hpp"
#include "storage/store_stats.hpp"

#include <openssl/rand.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

class memory_store final : public token_store {
 public:
  explicit memory_store(std::size_t max_queue) : max_queue_(max_queue) {
    // The secret dies with the store, as every token does: cursors never outlive what they name.
    if (RAND_bytes(cursor_secret_.data(), static_cast<int>(cursor_secret_.size())) != 1)
      throw std::runtime_error("memory store: no random bytes for the cursor secret");
  }
  ~memory_store() override { close(); }

  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    run(std::move(handler), [this, digest]() -> boost::system::result<std::optional<key_info>> {
      const std::lock_guard lock(data_mutex_);
      const auto it = records_.find(digest);
      if (it == records_.end()) return std::optional<key_info>{};
      const core::token_record& r = it->second;
      return std::optional<key_info>{key_info{r.owner, r.type == core::operator_type, r.expires_at,
                                              r.rate_limit, r.id, r.display_prefix}};
    });
  }

  void async_create(core::token_record record, create_handler handler) override {
    run_write(std::move(handler), [this, record = std::move(record)]() mutable {
      auto id = create(std::move(record));
      count_write();
      return id;
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
      for (; in_range() && page.tokens.size() < limit; ++it) page.tokens.push_back(records_.at(it->second));
      page.has_more = in_range();
      return page;
    });
  }

  void async_list_after(core::user_id owner, std::uint64_t after_id, std::size_t limit,
                        list_handler handler) override {
    run(std::move(handler), [this, owner, after_id, limit]() -> boost::system::result<list_page> {
      const std::lock_guard lock(data_mutex_);
      list_page page;
      if (after_id == std::numeric_limits<std::uint64_t>::max()) return page;
      // A seek to the first id above after_id: the page costs the same at any depth.
      auto it = index_.lower_bound({owner, after_id + 1});
      const auto end = index_.upper_bound({owner, std::numeric_limits<std::uint64_t>::max()});
      for (; it != end && page.tokens.size() < limit; ++it) page.tokens.push_back(records_.at(it->second));
      page.has_more = it != end;
      return page;
    });
  }

  void async_quota(core::user_id owner, quota_handler handler) override {
    run(std::move(handler), [this, owner]() -> boost::system::result<token_quota> {
      const std::lock_guard lock(data_mutex_);
      return quota_of(owner);
    });
  }

  void async_set_max_tokens(core::user_id owner, std::optional<std::uint64_t> max_tokens,
                            quota_handler handler) override {
    run_write(std::move(handler), [this, owner, max_tokens]() -> boost::system::result<token_quota> {
      const std::lock_guard lock(data_mutex_);
      count_write();
      if (max_tokens) {
        own_bounds_[owner] = *max_tokens;
      } else {
        own_bounds_.erase(owner);
      }
      return quota_of(owner);
    });
  }

  void set_default_max_tokens(std::uint64_t max_tokens) override {
    default_max_tokens_.store(max_tokens, std::memory_order_relaxed);
  }

  [[nodiscard]] std::array<std::uint8_t, 32> cursor_secret() const override { return cursor_secret_; }

  void async_remove(token_ref ref, remove_handler handler) override {
    run_write(std::move(handler), [this, ref]() -> boost::system::result<core::key_digest> {
      const std::lock_guard lock(data_mutex_);
      const auto found = find(ref);
      count_write();
      if (!found) return error(core::errc::not_found);
      const core::key_digest digest = (*found)->first;
      erase(*found);
      return digest;
    });
  }

  void async_roll(roll_request request, roll_handler handler) override {
    run_write(std::move(handler),
              [this, request = std::move(request)]() -> boost::system::result<rolled_token> {
                const std::lock_guard lock(data_mutex_);
                count_write();
                const auto found = find(request.old);
                if (!found || core::expired((*found)->second.expires_at, request.now))
                  return error(core::errc::not_found);
                if (records_.contains(request.digest)) return error(core::errc::internal);
                core::token_record& old = (*found)->second;
                if (old.expires_at == 0 || request.old_expires_at < old.expires_at)
                  set_expiry(old, request.old_expires_at);
                rolled_token out;
                out.old_digest = old.digest;
                out.old_id = old.id;
                out.old_expires_at = old.expires_at;
                out.fresh = old;
                out.fresh.digest = request.digest;
                out.fresh.display_prefix = request.display_prefix;
                out.fresh.created_at = request.now;
                out.fresh.expires_at = request.expires_at;
                out.fresh.last_used_at = 0;
                if (request.rate_limit.replace) out.fresh.rate_limit = request.rate_limit.limit;
                out.fresh.id = insert(out.fresh);
                return out;
              });
  }

  void async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override {
    run_write(std::move(handler), [this, ref, limit]() -> boost::system::result<core::key_digest> {
      const std::lock_guard lock(data_mutex_);
      count_write();
      const auto found = find(ref);
      if (!found) return error(core::errc::not_found);
      (*found)->second.rate_limit = limit;
      return (*found)->first;
    });
  }

  void async_record_uses(std::vector<key_use> uses, write_handler handler) override {
    run_write(std::move(handler), [this, uses = std::move(uses)]() -> error_code {
      const std::lock_guard lock(data_mutex_);
      count_write();
      for (const key_use& use : uses) {
        const auto it = records_.find(use.digest);
        if (it != records_.end()) it->second.last_used_at = std::max(it->second.last_used_at, use.minute);
      }
      return {};
    });
  }

  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override {
    run_write(std::move(handler),
              [this, cutoff, limit]() -> boost::system::result<std::vector<removed_token>> {
                const std::lock_guard lock(data_mutex_);
                count_write();
                std::vector<removed_token> removed;
                for (auto it = expiries_.begin();
                     it != expiries_.end() && it->first.first < cutoff && removed.size() < limit;) {
                  const auto record = records_.find(it->second);
                  ++it;  // erase() below removes the entry this pointed at
                  removed.push_back({record->second.owner, record->first});
                  erase(record);
                }
                return removed;
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
      net::post(pool_, [handler = std::move(handler), operation = std::move(operation)]() mutable {
        handler(operation());
      });
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

  template <class Handler, class Operation>
  void run_write(Handler handler, Operation operation) {
    run(std::move(handler), std::move(operation), true);
  }

  using record_map = std::unordered_map<core::key_digest, core::token_record, core::key_digest_hash>;

  [[nodiscard]] boost::system::result<std::uint64_t> create(core::token_record record) {
    const std::lock_guard lock(data_mutex_);
    // Same rule as the RocksDB store: an existing digest is never overwritten.
    if (records_.contains(record.digest)) return error(core::errc::internal);
    // Checked and counted under the one mutex every create takes: concurrent creates never overshoot.
    const auto own = own_bounds_.find(record.owner);
    const std::uint64_t bound =
        own != own_bounds_.end() ? own->second : default_max_tokens_.load(std::memory_order_relaxed);
    if (bound != 0 && held(record.owner) >= bound) return error(core::errc::quota_exceeded);
    return insert(std::move(record));
  }

  // Caller holds data_mutex_.
  [[nodiscard]] std::uint64_t held(core::user_id owner) const {
    const auto it = counts_.find(owner);
    return it == counts_.end() ? 0 : it->second;
  }

  // Caller holds data_mutex_.
  [[nodiscard]] token_quota quota_of(core::user_id owner) const {
    token_quota quota{held(owner), std::nullopt};
    if (const auto own = own_bounds_.find(owner); own != own_bounds_.end()) quota.max_tokens = own->second;
    return quota;
  }

  // Caller holds data_mutex_ and has checked that the digest is new.
  std::uint64_t insert(core::token_record record) {
    record.id = next_id_++;
    record.last_used_at = 0;
    const std::uint64_t id = record.id;
    index_.emplace(std::pair{record.owner, id}, record.digest);
    ++counts_[record.owner];  // a roll's new key counts too, though a roll is never refused
    if (record.expires_at != 0) expiries_.emplace(std::pair{record.expires_at, id}, record.digest);
    records_.emplace(record.digest, std::move(record));
    return id;
  }

  // Caller holds data_mutex_. The owner's token `ref` names, or nullopt.
  [[nodiscard]] std::optional<record_map::iterator> find(const token_ref& ref) {
    record_map::iterator it = records_.end();
    if (const auto* digest = std::get_if<core::key_digest>(&ref.which)) {
      it = records_.find(*digest);
    } else if (const auto at = index_.find({ref.owner, std::get<std::uint64_t>(ref.which)});
               at != index_.end()) {
      it = records_.find(at->second);
    }
    // Someone else's token is "not found" too: a caller must not learn which tokens exist.
    if (it == records_.end() || it->second.owner != ref.owner) return std::nullopt;
    return it;
  }

  // Caller holds data_mutex_. Keeps the expiry index in step: the sweep finds tokens only there.
  void set_expiry(core::token_record& r, std::int64_t expires_at) {
    if (r.expires_at != 0) expiries_.erase({r.expires_at, r.id});
    r.expires_at = expires_at;
    if (expires_at != 0) expiries_.emplace(std::pair{expires_at, r.id}, r.digest);
  }

  // Caller holds data_mutex_.
  void erase(record_map::iterator it) {
    const core::token_record& r = it->second;
    index_.erase({r.owner, r.id});
    expiries_.erase({r.expires_at, r.id});
    if (const auto count = counts_.find(r.owner); count != counts_.end() && --count->second == 0)
      counts_.erase(count);
    records_.erase(it);
  }

  // Every write is its own batch of one here.
  void count_write() noexcept {
    pending_writes_.fetch_sub(1, std::memory_order_relaxed);
    counters_.count_batch(1);
  }

  const std::size_t max_queue_;

  mutable std::mutex data_mutex_;
  record_map records_;
  std::map<std::pair<core::user_id, std::uint64_t>, core::key_digest> index_;    // creation order per owner
  std::map<std::pair<std::int64_t, std::uint64_t>, core::key_digest> expiries_;  // tokens that expire
  std::unordered_map<core::user_id, std::uint64_t> counts_;      // tokens held, per owner holding any
  std::unordered_map<core::user_id, std::uint64_t> own_bounds_;  // bounds operators gave (0: none)
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> default_max_tokens_{0};
  std::array<std::uint8_t, 32> cursor_secret_{};

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
