// Awaiting a storage operation from a coroutine of the token service.
#pragma once

#include "storage/completion_batch.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace tokend::server {

// The value travels in a wrapper so that an error_code is returned, not thrown, by use_awaitable.
template <class Value>
struct carried {
  Value value;
};

// The answers of one storage completion batch for the coroutines of one executor: resumed there,
// in the order answered, by one post.
template <class Handler, class Executor, class Value>
class resume_group final : public storage::completion_batch::group {
 public:
  explicit resume_group(Executor executor) : executor_(std::move(executor)) {}

  void add(std::shared_ptr<Handler> handler, Value value) {
    waiting_.emplace_back(std::move(handler), std::move(value));
  }

  void close() override {
    boost::asio::post(executor_, [waiting = std::move(waiting_)]() mutable {
      for (auto& [handler, value] : waiting) (*handler)(carried<Value>{std::move(value)});
    });
  }

 private:
  Executor executor_;
  std::vector<std::pair<std::shared_ptr<Handler>, Value>> waiting_;
};

// Starts a storage operation with a callback and suspends the coroutine until the callback runs;
// the coroutine resumes on its own executor, never on the storage thread that called back. A
// store answering within a completion batch has the answers for one executor posted together.
// Deliberately not a coroutine itself (see docs/ARCHITECTURE.md#coroutine-rules).
template <class Value, class Start>
boost::asio::awaitable<carried<Value>> on_store(Start start) {
  namespace net = boost::asio;
  return net::async_initiate<decltype(net::use_awaitable), void(carried<Value>)>(
      [start = std::move(start)](auto handler) mutable {
        using handler_type = decltype(handler);
        // std::function needs a copyable callable; the awaitable handler is move-only.
        auto shared = std::make_shared<handler_type>(std::move(handler));
        start([shared](Value v) {
          auto ex = net::get_associated_executor(*shared);
          if (auto* batch = storage::completion_batch::current()) {
            using group_type = resume_group<handler_type, decltype(ex), Value>;
            const void* const target = &net::query(ex, net::execution::context);
            batch->group_for<group_type>(target, [&ex] { return std::make_unique<group_type>(ex); })
                .add(shared, std::move(v));
            return;
          }
          net::post(ex, [shared, v = std::move(v)]() mutable { (*shared)(carried<Value>{std::move(v)}); });
        });
      },
      net::use_awaitable);
}

}  // namespace tokend::server
