// Opening the RocksDB database behind the RocksDB store, tuned for tokend's reads and writes.
#pragma once

#include "storage/rocksdb_store.hpp"

#include <rocksdb/db.h>

#include <memory>

namespace tokend::storage {

// Opens (creating if needed, parents included) the database in `options.data_dir`. Throws
// std::runtime_error with the RocksDB status text and the path when it cannot.
[[nodiscard]] std::unique_ptr<rocksdb::DB> open_rocksdb(const rocksdb_options& options);

}  // namespace tokend::storage
