// Awaiting a storage operation from a coroutine of the token service.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <utility>

namespace tokend::server {

// The value travels in a wrapper so that an error_code is returned, not thrown, by use_awaitable.
template <class Value>
struct carried {
  Value value;
};

// Starts a storage operation with a callback and suspends the coroutine until the callback runs;
// the coroutine resumes on its own executor, never on the storage thread that called back.
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
          net::post(ex, [shared, v = std::move(v)]() mutable { (*shared)(carried<Value>{std::move(v)}); });
        });
      },
      net::use_awaitable);
}

}  // namespace tokend::server
