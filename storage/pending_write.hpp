// A write waiting for a store's single writer, kept in submission order: one type per operation,
// each with the handler its answer goes to.
#pragma once

#include "core/error.hpp"
#include "core/token.hpp"
#include "storage/token_store.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tokend::storage {

struct create_write {
  core::token_record record;
  token_store::create_handler handler;
};

struct remove_write {
  token_ref ref;
  token_store::remove_handler handler;
};

struct roll_write {
  roll_request request;
  token_store::roll_handler handler;
};

struct limit_write {
  token_ref ref;
  std::optional<core::rate_limit> limit;
  token_store::remove_handler handler;
};

struct uses_write {
  std::vector<key_use> uses;
  token_store::write_handler handler;
};

struct sweep_write {
  std::int64_t cutoff = 0;
  std::size_t limit = 0;
  token_store::sweep_handler handler;
};

struct quota_write {
  core::user_id owner = 0;
  std::optional<std::uint64_t> max_tokens;
  token_store::quota_handler handler;
};

using pending_write =
    std::variant<create_write, remove_write, roll_write, limit_write, uses_write, sweep_write, quota_write>;

// Answers a write with an error.
inline void fail(pending_write& write, core::errc e) {
  std::visit([e](auto& w) { w.handler(core::make_error_code(e)); }, write);
}

// Hands a write to `store`'s own operation of the same kind.
inline void forward(pending_write write, token_store& store) {
  std::visit(
      [&store](auto&& w) {
        using type = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<type, create_write>) {
          store.async_create(std::move(w.record), std::move(w.handler));
        } else if constexpr (std::is_same_v<type, remove_write>) {
          store.async_remove(std::move(w.ref), std::move(w.handler));
        } else if constexpr (std::is_same_v<type, roll_write>) {
          store.async_roll(std::move(w.request), std::move(w.handler));
        } else if constexpr (std::is_same_v<type, limit_write>) {
          store.async_set_rate_limit(std::move(w.ref), std::move(w.limit), std::move(w.handler));
        } else if constexpr (std::is_same_v<type, uses_write>) {
          store.async_record_uses(std::move(w.uses), std::move(w.handler));
        } else if constexpr (std::is_same_v<type, sweep_write>) {
          store.async_remove_expired(w.cutoff, w.limit, std::move(w.handler));
        } else {
          store.async_set_max_tokens(w.owner, w.max_tokens, std::move(w.handler));
        }
      },
      std::move(write));
}

}  // namespace tokend::storage
