// The token operations the API needs, over the cache and a storage backend. Coroutine-friendly:
// each operation completes on the calling coroutine's executor, never on a storage thread.
#pragma once

#include "core/list_cache.hpp"
#include "core/token.hpp"
#include "core/token_cache.hpp"
#include "storage/token_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace tokend::server {

class token_service {
 public:
  // list_cache_records bounds the records of cached complete lists (0: lists always come from the
  // store). Cached lists stay correct because every write goes through this service: a store
  // shared with other processes must disable it or invalidate it from their writes.
  // The list cache is off for a shared store (store.shared()), and the key cache follows the
  // store's revocations (on_revoked) so deletes made by other processes reach it.
  token_service(storage::token_store& store, std::size_t cache_capacity, std::size_t list_cache_records = 0);
  ~token_service();
  token_service(const token_service&) = delete;
  token_service& operator=(const token_service&) = delete;

  // Owner of a key, or core::errc::unauthorized. A malformed key never reaches the cache or store;
  // a cached key is answered without suspending on storage.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<core::user_id>> authenticate(
      std::string_view key);

  struct created {
    std::string key;  // shown to the caller once, never stored
    core::token_record record;
  };
  // Durable before it returns success.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<created>> create(core::user_id owner,
                                                                              std::string description,
                                                                              std::string type);

  // From the list cache when the caller's complete list is there, else from the store.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<storage::list_page>> list(core::user_id owner,
                                                                                       std::size_t offset,
                                                                                       std::size_t limit);

  // core::errc::not_found unless `key` is one of `owner`'s. The key has left the cache on success.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> remove(core::user_id owner,
                                                                         std::string_view key);

  [[nodiscard]] const core::token_cache& cache() const noexcept { return cache_; }
  [[nodiscard]] storage::token_store& store() noexcept { return store_; }

 private:
  storage::token_store& store_;
  core::token_cache cache_;
  core::list_cache lists_;
};

}  // namespace tokend::server
