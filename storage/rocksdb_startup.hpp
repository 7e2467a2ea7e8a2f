// The RocksDB store's work at open, before it serves. Blocking; each throws std::runtime_error
// naming the data directory when the database refuses.
#pragma once

#include "storage/record_codec.hpp"
#include "storage/rocksdb_store.hpp"

#include <rocksdb/db.h>

#include <array>
#include <cstdint>

namespace tokend::storage {

// The secret that signs list cursors: made once, at the first open, and kept, so cursors stay
// valid across restarts.
[[nodiscard]] std::array<std::uint8_t, codec::cursor_secret_length> read_or_make_cursor_secret(
    rocksdb::DB& db, const rocksdb_options& options);

// The token counts are right as of the RocksDB sequence number in their marker: when it is missing
// or not the latest (a binary before the counts wrote here since), they are counted again from the
// index, keeping the bounds operators gave.
void rebuild_counts_if_stale(rocksdb::DB& db, const rocksdb_options& options);

}  // namespace tokend::storage
