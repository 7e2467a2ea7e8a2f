// The production token store: RocksDB behind a reader thread pool and one group-commit writer.
#pragma once

#include "storage/token_store.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tokend::storage {

struct rocksdb_options {
  std::string data_dir;
  bool sync = true;                // WriteOptions::sync for every batch
  std::size_t reader_threads = 2;  // thread pool for lookups/lists
  std::size_t max_queue = 65536;   // pending writes; a full queue fails with core::errc::overloaded at once
  std::size_t max_batch = 1024;    // writes per WriteBatch
  std::size_t block_cache_bytes = 64 << 20;
  // Table files RocksDB keeps open (-1: all). The service bounds it to fit its descriptor limit.
  int max_open_files = -1;
  // RocksDB's warnings and errors (never a key: records are stored under digests), e.g. for the
  // service's log. Empty: dropped. RocksDB writes no LOG file of its own (see rocksdb_info_log.hpp).
  std::function<void(bool error, std::string_view message)> log;

  // Test only. Runs on the writer thread before each batch is written; returning false fails that
  // batch as a failed disk write would. Lets tests hold the writer (to fill the queue) and exercise
  // the failure/recovery path deterministically. Empty in production.
  std::function<bool()> test_before_write;
};

// Opens (creating if needed) the store in `options.data_dir`.
//
// Handlers run on storage threads and must not throw: lookups, lists and refusals (overloaded) on
// the reader pool, write completions on the writer thread. Once close() has returned no storage
// thread is left, so later calls are refused with core::errc::unavailable on the caller's thread.
// close() must not be called from a handler.
//
// Throws std::runtime_error with a clear message (including the RocksDB status text and the path)
// when it cannot open.
[[nodiscard]] std::unique_ptr<token_store> open_rocksdb_store(const rocksdb_options& options);

}  // namespace tokend::storage
