// A create or a delete waiting for a store's single writer, kept in submission order.
#pragma once

#include "core/key.hpp"
#include "core/token.hpp"
#include "storage/token_store.hpp"

#include <utility>

namespace tokend::storage {

enum class write_kind { create, remove };

struct pending_write {
  write_kind kind = write_kind::create;
  core::token_record record;  // a removal uses only digest and owner
  token_store::write_handler handler;

  [[nodiscard]] static pending_write create(core::token_record record, token_store::write_handler handler) {
    return {write_kind::create, std::move(record), std::move(handler)};
  }
  [[nodiscard]] static pending_write remove(core::user_id owner, const core::key_digest& digest,
                                            token_store::write_handler handler) {
    pending_write w{write_kind::remove, {}, std::move(handler)};
    w.record.owner = owner;
    w.record.digest = digest;
    return w;
  }
};

}  // namespace tokend::storage
