// An in-memory token store with the same semantics as the RocksDB one, for integration tests and
// fuzzers that must not touch the disk.
#pragma once

#include "storage/token_store.hpp"

#include <cstddef>
#include <memory>

namespace tokend::storage {

// Nothing survives the store. Operations run on the store's own single thread, in submission
// order, and handlers are called there (never inline). At most `max_queue` writes wait at a time;
// more are refused with core::errc::overloaded, also on the store's thread. After close() later
// calls are refused with core::errc::unavailable on the caller's thread, since no store thread is
// left.
[[nodiscard]] std::unique_ptr<token_store> make_memory_store(std::size_t max_queue = 65536);

}  // namespace tokend::storage
