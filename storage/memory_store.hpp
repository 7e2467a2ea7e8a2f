// An in-memory token store with the same semantics as the RocksDB one, for integration tests and
// fuzzers that must not touch the disk.
#pragma once

#include "storage/token_store.hpp"

#include <memory>

namespace tokend::storage {

// Nothing survives the store. Operations run on the store's own single thread, in submission
// order, and handlers are called there (never inline); after close() later calls are refused with
// core::errc::unavailable on the caller's thread, since no store thread is left.
[[nodiscard]] std::unique_ptr<token_store> make_memory_store();

}  // namespace tokend::storage
