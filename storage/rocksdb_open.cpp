// Opening the RocksDB database with tokend's tuning. The tuning suits small records read mostly
// by point lookups (many of absent keys) on a machine whose cores the server shares; the
// measurements behind each choice are in docs/PERFORMANCE.md.
#include "storage/rocksdb_open.hpp"

#include "storage/record_codec.hpp"
#include "storage/rocksdb_info_log.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace tokend::storage {
namespace {

// A user's index keys ('u' + owner + sequence) arrive in increasing order, so the memtable can
// insert each one next to that user's previous one (a remembered position) instead of searching
// the whole skiplist. Record keys are random digests, out of this domain, and take the normal path.
class index_insert_hint final : public rocksdb::SliceTransform {
 public:
  [[nodiscard]] const char* Name() const override { return "tokend.IndexInsertHint"; }
  [[nodiscard]] rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), prefix_length};
  }
  [[nodiscard]] bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() >= prefix_length && key[0] == codec::index_tag;
  }

 private:
  static constexpr std::size_t prefix_length = 1 + sizeof(core::user_id);
};

[[nodiscard]] rocksdb::Options tuned_options(const rocksdb_options& o) {
  rocksdb::Options options;
  options.create_if_missing = true;
  // Two cores are shared with the server: one flush and one compaction at a time is plenty for a
  // small, write-light database, and more would steal CPU from request handling.
  options.max_background_jobs = 2;
  // Flushes and compactions write their files out 1 MiB at a time as they go (RocksDB's tuning
  // guide's value), not in one burst when the file is closed, which the WAL's fdatasync - every
  // create waits for one - would queue behind.
  options.bytes_per_sync = 1 << 20;
  // RocksDB's diagnostics go to the caller's log, not to a LOG file in the data directory, whose
  // writer aborts the process on the line after a failed write (a full disk).
  options.info_log = make_rocksdb_info_log(o.log);
  // Bounded, the table files share the process's descriptors with connections without running out.
  options.max_open_files = o.max_open_files;

  rocksdb::BlockBasedTableOptions table;
  // Most reads are point lookups of keys the cache missed, including keys that do not exist
  // (typos, scans by attackers): a bloom filter answers those without reading a data block.
  // Whole-key, since lookups never use prefixes.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  // One LRU cache object for every table reader, sized by configuration, so memory use is bounded
  // and predictable instead of growing per SST file.
  table.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  // Index and filter blocks are charged to that cache as well, so block_cache_bytes bounds read
  // memory as a whole; they go in its high-priority pool (the default) so data blocks do not evict
  // them, and L0's are pinned because every lookup consults every L0 file.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Index and filter in small partitions behind a pinned top level: whole, a large table's filter
  // and index outgrow a shard of the block cache and are re-read for every lookup, while
  // partitions fit and only the ones lookups touch stay cached (see docs/PERFORMANCE.md).
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  // A hash index inside each data block turns the in-block binary search of a point lookup into
  // one probe; range scans (lists) still use the binary index.
  table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  table.data_block_hash_table_util_ratio = 0.75;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // A bloom filter over the memtable too, on whole keys (no prefix extractor is set), so a lookup
  // of an absent key skips the memtable's skiplist search; a small share of the write buffer does.
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.02;
  // Left false on purpose (the default): it drops the bottom level's filters, which is right only
  // when lookups mostly hit. Here misses (unknown or deleted keys) are common and must stay cheap.
  options.optimize_filters_for_hits = false;
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<index_insert_hint>();

  // OptimizeForPointLookup() is deliberately not called: it replaces table_factory with its own
  // (a private cache sized in whole MiB), which would undo the shared cache above; everything
  // else it sets is set here explicitly.
  return options;
}

}  // namespace

std::unique_ptr<rocksdb::DB> open_rocksdb(const rocksdb_options& o) {
  if (o.data_dir.empty()) throw std::runtime_error("cannot open RocksDB store: data_dir is empty");
  // RocksDB creates only the last path component; create the parents. A failure here is left to
  // DB::Open, whose status text says more precisely what is wrong.
  std::error_code ignored;
  std::filesystem::create_directories(o.data_dir, ignored);

  const rocksdb::Options options = tuned_options(o);
  // Compactions run niced: they can wait, requests cannot, and on two cores a compaction at normal
  // priority takes one from the io threads (see docs/PERFORMANCE.md). The pool belongs to the
  // process-wide Env, so this is set here, where a store is opened, not with the options.
  options.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status status = rocksdb::DB::Open(options, o.data_dir, &raw);
  if (!status.ok()) {
    throw std::runtime_error("cannot open RocksDB store at '" + o.data_dir + "': " + status.ToString());
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

}  // namespace tokend::storage

#if defined(__SANITIZE_THREAD__)
#define TOKEND_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TOKEND_TSAN 1
#endif
#endif
#if defined(TOKEND_TSAN)
// The distribution's RocksDB is not built with -fsanitize=thread. ThreadSanitizer cannot see its
// internal synchronisation (the memtable skiplist publishes a node with an atomic release store and
// readers acquire it, all in uninstrumented code) yet sees its memcpy/memcmp through interceptors,
// so a lookup comparing keys that a concurrent write has just inserted is reported as a race.
// Reports whose stacks pass through RocksDB are suppressed; races with no RocksDB frame still
// fail. Defined here, next to the code that opens RocksDB, so every TSan executable that
// opens a RocksDB store (tests, the server) gets it. TSan's runtime calls this weak hook at start.
extern "C" const char* __tsan_default_suppressions() { return "race:rocksdb::\n"; }
#endif
