// Where RocksDB's own diagnostics go. Not its LOG file in the data directory: RocksDB 7.8 as
// Debian ships it is built with assertions on, and once a write to that file has failed (a full
// disk), the next line logged aborts the whole process (WritableFileWriter's "previous error"
// assertion). A full disk must cost availability of writes, not the process.
#pragma once

#include <rocksdb/env.h>

#include <functional>
#include <memory>
#include <string_view>

namespace tokend::storage {

// Receives RocksDB's warnings and errors, one formatted message each, from RocksDB's threads.
// `error` is true for ERROR and FATAL. Must not throw.
using rocksdb_log_sink = std::function<void(bool error, std::string_view message)>;

// A logger that hands WARN and above to `sink` (or drops everything when `sink` is empty) and
// drops RocksDB's info and debug chatter. It never touches a file.
[[nodiscard]] std::shared_ptr<rocksdb::Logger> make_rocksdb_info_log(rocksdb_log_sink sink);

}  // namespace tokend::storage
