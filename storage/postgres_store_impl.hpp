// The PostgreSQL store's class, shared by the files that implement it: the operations
// (postgres_store.cpp), start-up (postgres_store_start.cpp), the pool and shutdown
// (postgres_store_pool.cpp) and the sharing of rate-limit counts (postgres_store_share.cpp).
#pragma once

#include "storage/pg_connection.hpp"
#include "storage/postgres_admits.hpp"
#include "storage/postgres_jobs.hpp"
#include "storage/postgres_listener.hpp"
#include "storage/postgres_names.hpp"
#include "storage/postgres_store.hpp"
#include "storage/postgres_worker.hpp"
#include "storage/store_lifecycle.hpp"
#include "storage/store_stats.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tokend::storage {

class postgres_store final : public token_store {
 public:
  explicit postgres_store(const postgres_options& options);
  ~postgres_store() override;
  postgres_store(const postgres_store&) = delete;
  postgres_store& operator=(const postgres_store&) = delete;

  // Blocking, once: schema, then the pool and the listener; throws when the database is not there.
  void start();

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override;
  void async_create(core::token_record record, create_handler handler) override;
  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override;
  void async_list_after(core::user_id owner, std::uint64_t after_id, std::size_t limit,
                        list_handler handler) override;
  void async_quota(core::user_id owner, quota_handler handler) override;
  void async_set_max_tokens(core::user_id owner, std::optional<std::uint64_t> max_tokens,
                            quota_handler handler) override;
  void set_default_max_tokens(std::uint64_t max_tokens) override;
  [[nodiscard]] std::array<std::uint8_t, 32> cursor_secret() const override { return cursor_secret_; }
  void async_remove(token_ref ref, remove_handler handler) override;
  void async_roll(roll_request request, roll_handler handler) override;
  void async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override;
  void async_record_uses(std::vector<key_use> uses, write_handler handler) override;
  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override;
  [[nodiscard]] bool ready() const noexcept override;
  [[nodiscard]] boost::system::result<bool> empty() override;
  [[nodiscard]] store_stats stats() const override;
  [[nodiscard]] bool shared() const noexcept override { return true; }
  void on_revoked(std::function<void(const core::key_digest&)> callback) override;
  void async_share_admits(std::vector<admitted_requests> counts, write_handler handler) override;
  void on_peer_admits(peer_admits_handler callback) override;
  void close() override;

 private:
  [[nodiscard]] static postgres_options sanitized(postgres_options o);

  // ---- submission (any thread) ----

  void submit(pg::job j);

  // ---- the storage thread from here on ----

  void enqueue(pg::job j);
  void fail_queued();
  void share(const std::vector<admitted_requests>& counts, write_handler handler);
  [[nodiscard]] boost::system::error_code hearing() const noexcept;
  void set_listening(bool up);
  void set_connected(int delta);
  boost::asio::awaitable<void> initialize(std::shared_ptr<std::promise<std::string>> done);
  [[nodiscard]] boost::asio::awaitable<std::string> read_cursor_secret();
  void log(bool is_error, const std::string& message) const noexcept;

  // ---- the pool ----

  boost::asio::awaitable<void> work(std::size_t index);
  [[nodiscard]] boost::asio::awaitable<bool> idle(std::size_t index);
  boost::asio::awaitable<void> serve(std::size_t index);
  static void fail_unanswered(std::vector<pg::job>& batch) noexcept;
  boost::asio::awaitable<void> listen();

  // ---- shutdown ----

  void begin_stop(std::shared_ptr<std::promise<void>> stopped);
  void finish_stop();

  const postgres_options options_;
  const postgres_names names_;
  const std::uint64_t sender_ = pg::random_sender_id();  // this process among those sharing counts
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  batch_counters counters_;
  std::atomic<std::uint64_t> default_max_tokens_{0};  // 0: none
  // Written once by start(), before any reader: the one stored in the database.
  std::array<std::uint8_t, 32> cursor_secret_{};

  // Storage thread only.
  boost::asio::steady_timer wake_;  // never expires: cancel_one() wakes an idle worker
  pg::job_queue queue_;
  std::vector<std::unique_ptr<pg::worker>> workers_;
  std::size_t running_ = 0;  // worker coroutines not yet finished
  pg::connection init_conn_;
  pg::revocation_listener listener_;
  bool stopping_ = false;
  bool listener_done_ = true;  // until the listener is spawned
  std::shared_ptr<std::promise<void>> stopped_;
  pg::admits_outbox outbox_{sender_};
  std::uint64_t dropped_reported_ = 0;  // keys whose counts outbox_ dropped, already logged

  store_lifecycle lifecycle_;
  std::mutex state_mutex_;
  std::condition_variable state_cv_;

  std::atomic<int> connected_{0};
  std::atomic<bool> listening_{false};
  std::atomic<std::uint64_t> pending_{0};
};

}  // namespace tokend::storage
