// The data directory and the files tokend writes into it itself (RocksDB writes the rest). Only
// tokend's user may read any of it: the directory is 0700, files are 0600 (main() sets umask 077,
// which covers RocksDB's files too).
#pragma once

#include <filesystem>
#include <string_view>

namespace tokend::server {

// Creates `dir` (and missing parents) with mode 0700, or, when it exists with permissions for
// group or others, tightens it to 0700 and its top-level regular files to 0600, with a warning
// saying what was changed. Throws std::runtime_error when `dir` exists and is not a directory.
void prepare_data_dir(const std::filesystem::path& dir);

// Writes `content` to `path` as a new 0600 file: to a fresh temporary name in the same directory
// (O_CREAT|O_EXCL|O_NOFOLLOW), fsync'ed, renamed over `path` and the directory fsync'ed. Whatever
// stood at `path` (a symbolic link included) is replaced, never followed or written through.
// Throws std::runtime_error naming the path on any failure, leaving no temporary file behind.
void write_private_file(const std::filesystem::path& path, std::string_view content);

}  // namespace tokend::server
