// A process-wide bound on the bytes of list answers held in memory between being built and being
// written. Every list answer takes its share (its body's capacity) once built and gives it back
// when the session has written it; an answer that does not fit is refused (503, Retry-After).
// Refusing rather than queueing: a queued answer still holds its connection and request, a
// queue would hide the overload from the client and its balancer, and 503 is what the service
// already answers when the write queue is full.
//
// Cost on the request path: one relaxed fetch_add to take a share, one fetch_sub to give it back.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace tokend::server {

class response_budget {
 public:
  // A share of the budget, given back when destroyed. Empty (false) when nothing was taken.
  class lease {
   public:
    lease() noexcept = default;
    lease(lease&& other) noexcept
        : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    lease& operator=(lease&& other) noexcept {
      if (this != &other) {
        release();
        budget_ = std::exchange(other.budget_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
      }
      return *this;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { release(); }

    [[nodiscard]] explicit operator bool() const noexcept { return budget_ != nullptr; }
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
    void release() noexcept {
      if (budget_) budget_->in_flight_.fetch_sub(bytes_, std::memory_order_relaxed);
      budget_ = nullptr;
      bytes_ = 0;
    }

   private:
    friend class response_budget;
    lease(response_budget* budget, std::size_t bytes) noexcept : budget_(budget), bytes_(bytes) {}
    response_budget* budget_ = nullptr;
    std::size_t bytes_ = 0;
  };

  explicit response_budget(std::size_t limit) noexcept : limit_(limit) {}
  response_budget(const response_budget&) = delete;
  response_budget& operator=(const response_budget&) = delete;

  // `bytes` more in flight, or an empty lease (counted as refused) when the total would pass the
  // limit. The total never exceeds the limit, not even for an instant another thread could see.
  [[nodiscard]] lease try_acquire(std::size_t bytes) noexcept {
    std::size_t now = in_flight_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ || now > limit_ - bytes) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return {};
      }
    } while (!in_flight_.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
    const std::size_t total = now + bytes;
    std::size_t peak = peak_.load(std::memory_order_relaxed);
    while (total > peak && !peak_.compare_exchange_weak(peak, total, std::memory_order_relaxed)) {
    }
    return {this, bytes};
  }

  // Nothing is left: a list can be refused before it costs a store read.
  [[nodiscard]] bool exhausted() const noexcept {
    return in_flight_.load(std::memory_order_relaxed) >= limit_;
  }

  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }
  // A refusal made without calling try_acquire (the exhausted() pre-check).
  void count_refusal() noexcept { refused_.fetch_add(1, std::memory_order_relaxed); }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> peak_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace tokend::server
