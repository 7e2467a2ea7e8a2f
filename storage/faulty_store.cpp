// The fault-injecting token_store decorator: writes consult a control file on a thread of their own.
#include "storage/faulty_store.hpp"

#include "core/error.hpp"
#include "storage/pending_write.hpp"
#include "storage/store_lifecycle.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

namespace tokend::storage {
namespace {

using namespace std::chrono_literals;

constexpr auto stall_poll_interval = 5ms;

[[nodiscard]] std::string_view trim(std::string_view s) noexcept {
  constexpr std::string_view space = " \t\r\n\f\v";
  const auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

class faulty_store final : public token_store {
 public:
  faulty_store(std::unique_ptr<token_store> inner, std::string control_path)
      : inner_(std::move(inner)), control_path_(std::move(control_path)) {
    worker_ = std::thread([this] { work(); });
  }

  ~faulty_store() override { close(); }

  faulty_store(const faulty_store&) = delete;
  faulty_store& operator=(const faulty_store&) = delete;

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    inner_->async_lookup(digest, std::move(handler));
  }

  void async_create(core::token_record record, create_handler handler) override {
    enqueue(create_write{std::move(record), std::move(handler)});
  }

  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    inner_->async_list(owner, offset, limit, std::move(handler));
  }

  void async_list_after(core::user_id owner, std::uint64_t after_id, std::size_t limit,
                        list_handler handler) override {
    inner_->async_list_after(owner, after_id, limit, std::move(handler));
  }

  void async_quota(core::user_id owner, quota_handler handler) override {
    inner_->async_quota(owner, std::move(handler));
  }

  void async_set_max_tokens(core::user_id owner, std::optional<std::uint64_t> max_tokens,
                            quota_handler handler) override {
    enqueue(quota_write{owner, max_tokens, std::move(handler)});
  }

  void set_default_max_tokens(std::uint64_t max_tokens) override {
    inner_->set_default_max_tokens(max_tokens);
  }

  [[nodiscard]] std::array<std::uint8_t, 32> cursor_secret() const override {
    return inner_->cursor_secret();
  }

  void async_remove(token_ref ref, remove_handler handler) override {
    enqueue(remove_write{ref, std::move(handler)});
  }

  void async_roll(roll_request request, roll_handler handler) override {
    enqueue(roll_write{std::move(request), std::move(handler)});
  }

  void async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override {
    enqueue(limit_write{ref, limit, std::move(handler)});
  }

  void async_record_uses(std::vector<key_use> uses, write_handler handler) override {
    enqueue(uses_write{std::move(uses), std::move(handler)});
  }

  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override {
    enqueue(sweep_write{cutoff, limit, std::move(handler)});
  }

  [[nodiscard]] bool ready() const noexcept override {
    try {
      return inner_->ready() && read_control() != "fail";
    } catch (...) {
      return false;  // cannot even read the control file: not a state to report ready in
    }
  }

  [[nodiscard]] boost::system::result<bool> empty() override { return inner_->empty(); }

  // Faults are injected on writes only; sharing and revocations are the inner store's.
  [[nodiscard]] bool shared() const noexcept override { return inner_->shared(); }
  void on_revoked(std::function<void(const core::key_digest&)> callback) override {
    inner_->on_revoked(std::move(callback));
  }

  [[nodiscard]] store_stats stats() const override {
    store_stats s = inner_->stats();
    s.queue_depth += waiting_.load(std::memory_order_relaxed);
    return s;
  }

  void close() override {
    lifecycle_.close([this] {
      {
        const std::lock_guard lock(mutex_);
        stopping_ = true;  // also ends a stall: the worker drains the queue without waiting
      }
      cv_.notify_all();
      if (worker_.joinable()) worker_.join();
      inner_->close();
    });
  }

 private:
  [[nodiscard]] std::string read_control() const {
    std::ifstream in(control_path_, std::ios::binary);
    if (!in) return {};
    const std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return std::string(trim(content));
  }

  void enqueue(pending_write write) {
    const bool open = lifecycle_.while_open([&] {
      {
        const std::lock_guard lock(mutex_);
        queue_.push_back(std::move(write));
        waiting_.fetch_add(1, std::memory_order_relaxed);
      }
      cv_.notify_all();
    });
    // Closed (or closing): refused like the other stores refuse after close(). Forwarding instead
    // could slip a write past the control file, or into inner before inner_->close() runs.
    if (!open) fail(write, core::errc::unavailable);
  }

  // True when the write may go to inner; false when the control file says "fail".
  [[nodiscard]] bool wait_for_permission() {
    for (;;) {
      const std::string mode = read_control();
      if (mode == "fail") return false;
      if (mode != "stall") return true;
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, stall_poll_interval, [this] { return stopping_; })) return true;
    }
  }

  void work() {
    for (;;) {
      pending_write write;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;  // stopping and drained
        write = std::move(queue_.front());
        queue_.pop_front();
      }
      const bool permitted = wait_for_permission();
      // No longer ours to count before it completes or reaches inner (whose stats count it then),
      // so that stats() never shows a write whose handler has already run.
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      if (permitted) {
        forward(std::move(write), *inner_);
      } else {
        fail(write, core::errc::unavailable);
      }
    }
  }

  const std::unique_ptr<token_store> inner_;
  const std::string control_path_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<pending_write> queue_;  // one at a time, in order: a stalled write holds back later ones
  bool stopping_ = false;
  store_lifecycle lifecycle_;
  std::atomic<std::uint64_t> waiting_{0};

  std::thread worker_;
};

}  // namespace

std::unique_ptr<token_store> make_faulty_store(std::unique_ptr<token_store> inner, std::string control_path) {
  return std::make_unique<faulty_store>(std::move(inner), std::move(control_path));
}

}  // namespace tokend::storage
