// The RocksDB token store: RocksDB tuning, the reader pool and the group-commit writer (the byte
// layout is in record_codec.hpp). With rocksdb_info_log.cpp, the only code including RocksDB.
#include "storage/rocksdb_store.hpp"

#include "core/error.hpp"
#include "storage/record_codec.hpp"
#include "storage/rocksdb_info_log.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <iterator>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

using namespace codec;

[[nodiscard]] std::size_t batch_bucket(std::size_t n) noexcept {
  // Bucket i holds sizes in (2^(i-1), 2^i]; bit_width(n - 1) is that i for n >= 1.
  return std::min<std::size_t>(std::bit_width(n > 0 ? n - 1 : 0), batch_size_buckets - 1);
}

// A user's index keys ('u' + owner + sequence) arrive in increasing order, so the memtable can
// insert each one next to that user's previous one (a remembered position) instead of searching
// the whole skiplist: about half of the memtable work of a create. Record keys are random
// digests, out of this domain, and take the normal path.
class index_insert_hint final : public rocksdb::SliceTransform {
 public:
  [[nodiscard]] const char* Name() const override { return "tokend.IndexInsertHint"; }
  [[nodiscard]] rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), prefix_length};
  }
  [[nodiscard]] bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() >= prefix_length && key[0] == index_tag;
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
  // guide's value), not in one burst of tens of MiB when the file is closed, which the WAL's
  // fdatasync - every create waits for one - would queue behind.
  options.bytes_per_sync = 1 << 20;
  // RocksDB's diagnostics go to the caller's log, not to a LOG file in the data directory, whose
  // writer aborts the process on the line after a failed write (a full disk).
  options.info_log = make_rocksdb_info_log(o.log);
  // Bounded, the table files share the process's descriptors with connections without running out.
  options.max_open_files = o.max_open_files;

  rocksdb::BlockBasedTableOptions table;
  // Most reads are point lookups of keys the cache missed, including keys that do not exist
  // (typos, scans by attackers): a 10-bit bloom filter (~1% false positives) answers those without
  // reading a data block. Whole-key, since lookups never use prefixes.
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
  // Index and filter in partitions of about 4 KiB, found through a small pinned top level. Whole,
  // a table's filter alone takes 1.2 MiB per million keys (10 bits each): past about a million
  // keys a table's filter and index outgrew a shard of the block cache (1/64 of it), were evicted
  // as soon as they were read, and every lookup - each create's collision check among them -
  // re-read and re-checksummed them from the file: creates fell from 40k/s to under 5k/s.
  // Partitions fit, and only the ones lookups touch stay cached.
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
  // of an absent key skips the memtable's skiplist search. 2% of the write buffer is enough.
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

[[nodiscard]] std::unique_ptr<rocksdb::DB> open_db(const rocksdb_options& o) {
  if (o.data_dir.empty()) throw std::runtime_error("cannot open RocksDB store: data_dir is empty");
  // RocksDB creates only the last path component; create the parents. A failure here is left to
  // DB::Open, whose status text says more precisely what is wrong.
  std::error_code ignored;
  std::filesystem::create_directories(o.data_dir, ignored);

  const rocksdb::Options options = tuned_options(o);
  // Compactions run niced: they can wait, requests cannot. On two cores a compaction at normal
  // priority takes one from the io threads for whole scheduler slices. The pool belongs to the
  // process-wide Env, so this is set here, where a store is opened, not with the options.
  options.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status status = rocksdb::DB::Open(options, o.data_dir, &raw);
  if (!status.ok()) {
    throw std::runtime_error("cannot open RocksDB store at '" + o.data_dir + "': " + status.ToString());
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

class rocksdb_store final : public token_store {
 public:
  explicit rocksdb_store(const rocksdb_options& options)
      : options_(sanitized(options)), db_(open_db(options_)), readers_(options_.reader_threads) {
    next_sequence_ = read_sequence();
    writer_ = std::thread([this] { writer_loop(); });
  }

  ~rocksdb_store() override { close(); }

  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    std::shared_lock lifecycle(lifecycle_mutex_);
    if (closed_) {
      lifecycle.unlock();
      handler(error(core::errc::unavailable));
      return;
    }
    net::post(readers_, [this, digest, handler = std::move(handler)] { handler(lookup(digest)); });
  }

  void async_create(core::token_record record, write_handler handler) override {
    submit(pending_write{write_kind::create, std::move(record), std::move(handler)});
  }

  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    std::shared_lock lifecycle(lifecycle_mutex_);
    if (closed_) {
      lifecycle.unlock();
      handler(error(core::errc::unavailable));
      return;
    }
    net::post(readers_, [this, owner, offset, limit, handler = std::move(handler)] {
      handler(list(owner, offset, limit));
    });
  }

  void async_remove(core::user_id owner, const core::key_digest& digest, write_handler handler) override {
    core::token_record target;
    target.owner = owner;
    target.digest = digest;
    submit(pending_write{write_kind::remove, std::move(target), std::move(handler)});
  }

  [[nodiscard]] bool ready() const noexcept override {
    return !closing_.load(std::memory_order_acquire) && !write_failed_.load(std::memory_order_acquire);
  }

  [[nodiscard]] boost::system::result<bool> empty() override {
    std::shared_lock lifecycle(lifecycle_mutex_);
    if (closed_)
      return boost::system::result<bool>(boost::system::in_place_error, error(core::errc::unavailable));
    const std::string upper(1, record_tag + 1);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;
    const std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read));
    it->Seek(rocksdb::Slice(&record_tag, 1));
    if (it->Valid()) return false;
    if (!it->status().ok())
      return boost::system::result<bool>(boost::system::in_place_error, error(core::errc::unavailable));
    return true;
  }

  [[nodiscard]] store_stats stats() const override {
    store_stats s;
    s.queue_depth = queue_depth_.load(std::memory_order_relaxed);
    s.batches = batches_.load(std::memory_order_relaxed);
    s.batched_writes = batched_writes_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < batch_size_buckets; ++i) {
      s.batch_size_counts[i] = batch_size_counts_[i].load(std::memory_order_relaxed);
    }
    s.write_failures = write_failures_.load(std::memory_order_relaxed);
    return s;
  }

  void close() override {
    const std::lock_guard serial(close_mutex_);  // a second concurrent close() waits for the first
    {
      // Exclusive: every submission that saw the store open has finished posting or queueing, so
      // the writer and the pool below will see all of them.
      const std::unique_lock lifecycle(lifecycle_mutex_);
      if (closed_) return;
      closed_ = true;
    }
    closing_.store(true, std::memory_order_release);
    {
      const std::lock_guard queue(queue_mutex_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    readers_.join();
    // With sync=false the last batches may be in the OS page cache only: make them durable.
    if (!options_.sync) (void)db_->FlushWAL(true);
    (void)db_->Close();
    db_.reset();
  }

 private:
  enum class write_kind { create, remove };

  struct pending_write {
    write_kind kind;
    core::token_record record;  // a removal uses only digest and owner
    write_handler handler;
  };

  // The state of a key as earlier writes of the batch being built left it.
  struct overlay_entry {
    bool exists = false;
    record_head head;
  };
  using overlay = std::unordered_map<core::key_digest, overlay_entry, core::key_digest_hash>;

  [[nodiscard]] static rocksdb_options sanitized(rocksdb_options o) {
    o.reader_threads = std::max<std::size_t>(o.reader_threads, 1);
    o.max_batch = std::max<std::size_t>(o.max_batch, 1);
    return o;
  }

  [[nodiscard]] std::uint64_t read_sequence() {
    std::string value;
    const rocksdb::Status status = db_->Get(rocksdb::ReadOptions{}, rocksdb::Slice(sequence_key), &value);
    if (status.IsNotFound()) return 0;
    if (!status.ok()) {
      throw std::runtime_error("cannot read sequence counter in '" + options_.data_dir +
                               "': " + status.ToString());
    }
    const auto next = decode_sequence(value);
    if (!next) throw std::runtime_error("corrupt sequence counter in '" + options_.data_dir + "'");
    return *next;
  }

  [[nodiscard]] boost::system::result<std::optional<core::user_id>> lookup(const core::key_digest& digest) {
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), record_key(digest), &value);
    if (status.IsNotFound()) return std::optional<core::user_id>{};
    if (!status.ok()) return error(core::errc::unavailable);
    const auto head = decode_record_head(value.ToStringView());
    if (!head) return error(core::errc::internal);
    return std::optional<core::user_id>{head->owner};
  }

  [[nodiscard]] boost::system::result<list_page> list(core::user_id owner, std::size_t offset,
                                                      std::size_t limit) {
    const std::string lower = index_prefix(owner);
    const std::string upper = index_upper_bound(owner);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;  // lets RocksDB stop at the user's last entry
    const std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read));

    list_page page;
    page.tokens.reserve(std::min<std::size_t>(limit, 1024));
    it->Seek(lower);
    for (std::size_t skipped = 0; skipped < offset && it->Valid(); ++skipped) it->Next();
    while (it->Valid() && page.tokens.size() < limit) {
      auto record = decode_index(owner, it->value().ToStringView());
      if (!record) return error(core::errc::internal);
      page.tokens.push_back(std::move(*record));
      it->Next();
    }
    if (!it->status().ok()) return error(core::errc::unavailable);
    page.has_more = it->Valid();
    return page;
  }

  void submit(pending_write write) {
    std::shared_lock lifecycle(lifecycle_mutex_);
    if (closed_) {
      lifecycle.unlock();
      write.handler(error(core::errc::unavailable));
      return;
    }
    bool queued = false;
    {
      const std::lock_guard queue(queue_mutex_);
      if (queue_.size() < options_.max_queue) {
        queue_.push_back(std::move(write));
        queue_depth_.store(queue_.size(), std::memory_order_relaxed);
        queued = true;
      }
    }
    if (queued) {
      queue_cv_.notify_one();
      return;
    }
    // Refused at once, but posted so that the handler never runs on the caller's stack (the
    // caller may hold locks or not expect re-entry). The pool is alive: we hold the shared lock.
    net::post(readers_, [handler = std::move(write.handler)] { handler(error(core::errc::overloaded)); });
  }

  void writer_loop() {
    std::vector<pending_write> batch;
    batch.reserve(std::min<std::size_t>(options_.max_batch, 4096));
    for (;;) {
      {
        std::unique_lock queue(queue_mutex_);
        const auto wake = [this] { return !queue_.empty() || stopping_; };
        if (disk_error_) {
          // RocksDB refuses writes after a failed one until resumed. Try now and then even with
          // no write waiting: a not-ready instance gets no traffic, so waiting for one would
          // leave it unready for good once the disk is fine again.
          if (!queue_cv_.wait_for(queue, recovery_backoff_, wake)) {
            queue.unlock();
            try_recover();
            continue;
          }
        } else {
          queue_cv_.wait(queue, wake);
        }
        if (queue_.empty()) return;  // stopping, and everything queued has been committed
        const auto n = static_cast<std::ptrdiff_t>(std::min(queue_.size(), options_.max_batch));
        std::move(queue_.begin(), queue_.begin() + n, std::back_inserter(batch));
        queue_.erase(queue_.begin(), queue_.begin() + n);
        queue_depth_.store(queue_.size(), std::memory_order_relaxed);
      }
      commit(batch);
      batch.clear();
    }
  }

  // The state of `digest` after the writes already put in this batch.
  [[nodiscard]] boost::system::result<std::optional<record_head>> current(const overlay& pending,
                                                                          const core::key_digest& digest) {
    if (const auto it = pending.find(digest); it != pending.end()) {
      if (!it->second.exists) return std::optional<record_head>{};
      return std::optional<record_head>{it->second.head};
    }
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), record_key(digest), &value);
    if (status.IsNotFound()) return std::optional<record_head>{};
    if (!status.ok()) return error(core::errc::unavailable);
    const auto head = decode_record_head(value.ToStringView());
    if (!head) return error(core::errc::internal);
    return std::optional<record_head>{*head};
  }

  // Writer thread. After RocksDB failed a write (disk full, I/O error) it stays read-only until
  // Resume(), which flushes the memtables to new files and switches to a new WAL, leaving any torn
  // record behind. A synced write then proves the disk takes writes again before ready() says so.
  // Backs off exponentially (10 ms to 1 s) while the disk still refuses.
  void try_recover() {
    bool ok = db_->Resume().ok();
    if (ok) {
      rocksdb::WriteBatch probe;
      probe.Put(rocksdb::Slice(sequence_key), encode_sequence(next_sequence_));
      rocksdb::WriteOptions write_options;
      write_options.sync = options_.sync;
      ok = db_->Write(write_options, &probe).ok();
    }
    if (ok) {
      disk_error_ = false;
      write_failed_.store(false, std::memory_order_release);
      recovery_backoff_ = min_recovery_backoff;
    } else {
      recovery_backoff_ = std::min(recovery_backoff_ * 2, max_recovery_backoff);
    }
  }

  void commit(std::vector<pending_write>& batch) {
    if (write_failed_.load(std::memory_order_relaxed)) {
      // After a failed write RocksDB may refuse every write until told to recover; if the fault is
      // gone this brings the store back, otherwise the Write below fails again.
      (void)db_->Resume();
    }

    std::vector<error_code> results(batch.size());
    overlay pending;
    rocksdb::WriteBatch write_batch;
    bool created = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const core::token_record& r = batch[i].record;
      const auto state = current(pending, r.digest);
      if (!state) {
        results[i] = state.error();
        continue;
      }
      if (batch[i].kind == write_kind::create) {
        if (state->has_value()) {
          // Digests of random 224-bit keys do not collide: this is a caller bug, and overwriting
          // would hand someone else's token to this owner.
          results[i] = error(core::errc::internal);
          continue;
        }
        if (!encodable(r)) {
          results[i] = error(core::errc::bad_request);
          continue;
        }
        const std::uint64_t sequence = next_sequence_++;
        write_batch.Put(record_key(r.digest), encode_record(r, sequence));
        write_batch.Put(index_key(r.owner, sequence), encode_index(r));
        pending[r.digest] = overlay_entry{true, record_head{r.owner, sequence}};
        created = true;
      } else {
        // Someone else's key is "not found" too: a caller must not learn which keys exist.
        if (!state->has_value() || (*state)->owner != r.owner) {
          results[i] = error(core::errc::not_found);
          continue;
        }
        write_batch.Delete(record_key(r.digest));
        write_batch.Delete(index_key(r.owner, (*state)->sequence));
        pending[r.digest] = overlay_entry{false, {}};
      }
    }
    if (created) {
      // The counter advances even if this write fails: gaps are harmless, reuse would not be.
      write_batch.Put(rocksdb::Slice(sequence_key), encode_sequence(next_sequence_));
    }

    bool ok = true;
    if (options_.test_before_write && !options_.test_before_write()) {
      ok = false;
    } else if (write_batch.Count() > 0) {
      rocksdb::WriteOptions write_options;
      write_options.sync = options_.sync;
      ok = db_->Write(write_options, &write_batch).ok();
      // A failure of RocksDB itself (not of the test hook): the writer then retries on its own.
      if (!ok) disk_error_ = true;
    }

    if (!ok) {
      write_failed_.store(true, std::memory_order_release);
      write_failures_.fetch_add(1, std::memory_order_relaxed);
      for (auto& w : batch) w.handler(error(core::errc::unavailable));
      return;
    }
    if (write_batch.Count() > 0) {
      disk_error_ = false;
      write_failed_.store(false, std::memory_order_release);
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    batched_writes_.fetch_add(batch.size(), std::memory_order_relaxed);
    batch_size_counts_[batch_bucket(batch.size())].fetch_add(1, std::memory_order_relaxed);
    // Completed here, on the writer thread: handlers are expected to re-dispatch at once, which is
    // cheaper than a post per waiter, and the next batch is already filling the queue meanwhile.
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].handler(results[i]);
  }

  const rocksdb_options options_;
  std::unique_ptr<rocksdb::DB> db_;
  net::thread_pool readers_;
  std::thread writer_;

  // Shared while a call checks closed_ and hands work to the pool or the queue; exclusive while
  // close() sets closed_. So after close() flips it, no new work can reach a joined thread.
  mutable std::shared_mutex lifecycle_mutex_;
  bool closed_ = false;
  std::mutex close_mutex_;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<pending_write> queue_;
  bool stopping_ = false;

  std::uint64_t next_sequence_ = 0;  // writer thread only (and the constructor, before it starts)

  std::atomic<bool> closing_{false};
  std::atomic<bool> write_failed_{false};
  bool disk_error_ = false;  // writer thread only: RocksDB itself failed the last write
  static constexpr std::chrono::milliseconds min_recovery_backoff{10};
  static constexpr std::chrono::milliseconds max_recovery_backoff{1000};
  std::chrono::milliseconds recovery_backoff_ = min_recovery_backoff;  // writer thread only
  std::atomic<std::uint64_t> queue_depth_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> batched_writes_{0};
  std::array<std::atomic<std::uint64_t>, batch_size_buckets> batch_size_counts_{};
  std::atomic<std::uint64_t> write_failures_{0};
};

}  // namespace

std::unique_ptr<token_store> open_rocksdb_store(const rocksdb_options& options) {
  return std::make_unique<rocksdb_store>(options);
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
// fail. Defined here, next to the only code that links RocksDB, so every TSan executable that
// opens a RocksDB store (tests, the server) gets it. TSan's runtime calls this weak hook at start.
extern "C" const char* __tsan_default_suppressions() { return "race:rocksdb::\n"; }
#endif
