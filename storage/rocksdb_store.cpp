// The RocksDB token store: the reader pool and the group-commit writer (the tuning is in
// rocksdb_open.cpp, the byte layout in record_codec.hpp). With rocksdb_open.cpp and
// rocksdb_info_log.cpp, the only code including RocksDB.
#include "storage/rocksdb_store.hpp"

#include "core/error.hpp"
#include "core/key.hpp"
#include "storage/completion_batch.hpp"
#include "storage/pending_write.hpp"
#include "storage/record_codec.hpp"
#include "storage/rocksdb_batch.hpp"
#include "storage/rocksdb_open.hpp"
#include "storage/rocksdb_startup.hpp"
#include "storage/store_lifecycle.hpp"
#include "storage/store_stats.hpp"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/write_batch.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

using namespace codec;

class rocksdb_store final : public token_store {
 public:
  explicit rocksdb_store(const rocksdb_options& options)
      : options_(sanitized(options)), db_(open_rocksdb(options_)), readers_(options_.reader_threads) {
    next_sequence_ = read_sequence();
    cursor_secret_ = read_or_make_cursor_secret(*db_, options_);
    rebuild_counts_if_stale(*db_, options_);
    writer_ = std::thread([this] { writer_loop(); });
  }

  ~rocksdb_store() override { close(); }

  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    read([this, digest](lookup_handler& h) { h(lookup(digest)); }, std::move(handler));
  }

  void async_create(core::token_record record, create_handler handler) override {
    submit(create_write{std::move(record), std::move(handler)});
  }

  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    read([this, owner, offset, limit](list_handler& h) { h(list(owner, 0, offset, limit)); },
         std::move(handler));
  }

  void async_list_after(core::user_id owner, std::uint64_t after_id, std::size_t limit,
                        list_handler handler) override {
    read(
        [this, owner, after_id, limit](list_handler& h) {
          // Ids are sequences + 1: the first id above after_id has sequence after_id.
          if (after_id == std::numeric_limits<std::uint64_t>::max()) {
            h(list_page{});
          } else {
            h(list(owner, after_id, 0, limit));
          }
        },
        std::move(handler));
  }

  void async_quota(core::user_id owner, quota_handler handler) override {
    read([this, owner](quota_handler& h) { h(quota(owner)); }, std::move(handler));
  }

  void async_set_max_tokens(core::user_id owner, std::optional<std::uint64_t> max_tokens,
                            quota_handler handler) override {
    submit(quota_write{owner, max_tokens, std::move(handler)});
  }

  void set_default_max_tokens(std::uint64_t max_tokens) override {
    default_max_tokens_.store(max_tokens, std::memory_order_relaxed);
  }

  [[nodiscard]] std::array<std::uint8_t, 32> cursor_secret() const override { return cursor_secret_; }

  void async_remove(token_ref ref, remove_handler handler) override {
    submit(remove_write{ref, std::move(handler)});
  }

  void async_roll(roll_request request, roll_handler handler) override {
    submit(roll_write{std::move(request), std::move(handler)});
  }

  void async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override {
    submit(limit_write{ref, limit, std::move(handler)});
  }

  void async_record_uses(std::vector<key_use> uses, write_handler handler) override {
    submit(uses_write{std::move(uses), std::move(handler)});
  }

  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override {
    submit(sweep_write{cutoff, limit, std::move(handler)});
  }

  [[nodiscard]] bool ready() const noexcept override {
    return !lifecycle_.closing() && !write_failed_.load(std::memory_order_acquire);
  }

  [[nodiscard]] boost::system::result<bool> empty() override {
    boost::system::result<bool> result(boost::system::in_place_error, error(core::errc::unavailable));
    (void)lifecycle_.while_open([&] { result = no_records(); });
    return result;
  }

  [[nodiscard]] store_stats stats() const override {
    return counters_.snapshot(queue_depth_.load(std::memory_order_relaxed));
  }

  void close() override {
    // Once closing has begun every submission that saw the store open has finished posting or
    // queueing, so the writer and the pool below will see all of them.
    lifecycle_.close([this] {
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
    });
  }

 private:
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

  [[nodiscard]] boost::system::result<token_quota> quota(core::user_id owner) {
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), count_key(owner), &value);
    if (status.IsNotFound()) return token_quota{};
    if (!status.ok()) return error(core::errc::unavailable);
    const auto count = decode_count(value.ToStringView());
    if (!count) return error(core::errc::internal);
    return token_quota{count->tokens, count->max_tokens};
  }

  // Runs `operation` with the handler on the reader pool; after close() refuses on this thread.
  template <class Operation, class Handler>
  void read(Operation operation, Handler handler) {
    const bool posted = lifecycle_.while_open([&] {
      net::post(readers_, [operation = std::move(operation), handler = std::move(handler)]() mutable {
        operation(handler);
      });
    });
    if (!posted) handler(error(core::errc::unavailable));
  }

  [[nodiscard]] boost::system::result<bool> no_records() {
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

  [[nodiscard]] boost::system::result<std::optional<key_info>> lookup(const core::key_digest& digest) {
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_->Get(rocksdb::ReadOptions{}, db_->DefaultColumnFamily(), record_key(digest), &value);
    if (status.IsNotFound()) return std::optional<key_info>{};
    if (!status.ok()) return error(core::errc::unavailable);
    auto head = decode_record_head(value.ToStringView());
    if (!head) return error(core::errc::internal);
    return std::optional<key_info>{key_info{head->owner, head->operator_key, head->expires_at,
                                            head->rate_limit, id_of(head->sequence),
                                            std::move(head->display_prefix)}};
  }

  // The owner's index entries from `first_sequence` on (a seek), merged with the owner's last uses:
  // both are ordered by sequence.
  [[nodiscard]] boost::system::result<list_page> list(core::user_id owner, std::uint64_t first_sequence,
                                                      std::size_t offset, std::size_t limit) {
    rocksdb::ManagedSnapshot snapshot(db_.get());  // both iterators see the same writes
    const std::string upper = index_upper_bound(owner);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.snapshot = snapshot.snapshot();
    read.iterate_upper_bound = &upper_slice;  // lets RocksDB stop at the user's last entry
    const std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read));
    const std::string uses_upper = use_upper_bound(owner);
    const rocksdb::Slice uses_upper_slice(uses_upper);
    rocksdb::ReadOptions read_uses = read;
    read_uses.iterate_upper_bound = &uses_upper_slice;
    std::unique_ptr<rocksdb::Iterator> uses;  // from the first token listed on

    list_page page;
    page.tokens.reserve(std::min<std::size_t>(limit, 1024));
    it->Seek(index_key(owner, first_sequence));
    for (std::size_t skipped = 0; skipped < offset && it->Valid(); ++skipped) it->Next();
    while (it->Valid() && page.tokens.size() < limit) {
      auto record = decode_index(it->key().ToStringView(), it->value().ToStringView());
      if (!record) return error(core::errc::internal);
      const std::uint64_t sequence = sequence_of(record->id);
      if (!uses) {
        uses.reset(db_->NewIterator(read_uses));
        uses->Seek(use_key(owner, sequence));
      }
      const auto at = [&uses] {
        return uses->Valid() ? sequence_in(uses->key().ToStringView()) : std::nullopt;
      };
      std::optional<std::uint64_t> used = at();
      while (used && *used < sequence) {
        uses->Next();
        used = at();
      }
      if (used == sequence) {
        const auto minute = decode_last_use(uses->value().ToStringView());
        if (!minute) return error(core::errc::internal);
        record->last_used_at = *minute;
      }
      page.tokens.push_back(std::move(*record));
      it->Next();
    }
    if (!it->status().ok() || (uses && !uses->status().ok())) return error(core::errc::unavailable);
    page.has_more = it->Valid();
    return page;
  }

  void submit(pending_write write) {
    const bool open = lifecycle_.while_open([&] {
      std::unique_lock queue(queue_mutex_);
      if (queue_.size() >= options_.max_queue) {
        queue.unlock();
        // Refused at once, but posted so that the handler never runs on the caller's stack (the
        // caller may hold locks or not expect re-entry). The pool is alive while the store is open.
        net::post(readers_, [write = std::move(write)]() mutable { fail(write, core::errc::overloaded); });
        return;
      }
      queue_.push_back(std::move(write));
      queue_depth_.store(queue_.size(), std::memory_order_relaxed);
      queue.unlock();
      queue_cv_.notify_one();
    });
    if (!open) fail(write, core::errc::unavailable);
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

  // Writer thread. After RocksDB failed a write (disk full, I/O error) it stays read-only until
  // Resume(), which flushes the memtables to new files and switches to a new WAL, leaving any torn
  // record behind. A synced write then proves the disk takes writes again before ready() says so.
  // Backs off exponentially (10 ms to 1 s) while the disk still refuses.
  void try_recover() {
    bool ok = db_->Resume().ok();
    if (ok) {
      rocksdb::WriteBatch probe;
      probe.Put(rocksdb::Slice(sequence_key), encode_sequence(next_sequence_));
      put_counts_marker(*db_, probe);
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
    std::span<pending_write> rest(batch);
    while (!rest.empty()) {
      // A sweep reads the expiry index from the database, not from a batch being built, so it
      // starts a batch: the writes before it are written first.
      std::size_t n = 1;
      while (n < rest.size() && !std::holds_alternative<sweep_write>(rest[n])) ++n;
      commit_part(rest.first(n));
      rest = rest.subspan(n);
    }
  }

  void commit_part(std::span<pending_write> writes) {
    if (write_failed_.load(std::memory_order_relaxed)) {
      // After a failed write RocksDB may refuse every write until told to recover; if the fault is
      // gone this brings the store back, otherwise the Write below fails again.
      (void)db_->Resume();
    }

    batch_builder builder(*db_, next_sequence_, default_max_tokens_.load(std::memory_order_relaxed));
    answers_.clear();
    for (const pending_write& w : writes) answers_.push_back(builder.add(w));
    rocksdb::WriteBatch& write_batch = builder.finish();

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
      counters_.count_failure();
      for (auto& w : writes) fail(w, core::errc::unavailable);
      answers_.clear();
      return;
    }
    if (write_batch.Count() > 0) {
      disk_error_ = false;
      write_failed_.store(false, std::memory_order_release);
    }
    counters_.count_batch(writes.size());
    // Completed here, on the writer thread: handlers are expected to re-dispatch at once, which is
    // cheaper than a post per waiter, and the next batch is already filling the queue meanwhile.
    // Within one completion batch, so the answers for one io thread go over together.
    {
      const completion_batch answered;
      for (std::size_t i = 0; i < writes.size(); ++i) deliver(writes[i], std::move(answers_[i]));
    }
    answers_.clear();
  }

  const rocksdb_options options_;
  std::unique_ptr<rocksdb::DB> db_;
  net::thread_pool readers_;
  std::thread writer_;

  store_lifecycle lifecycle_;  // no new work reaches the pool or the queue once close() has begun

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<pending_write> queue_;
  bool stopping_ = false;

  std::uint64_t next_sequence_ = 0;  // writer thread only (and the constructor, before it starts)
  std::array<std::uint8_t, cursor_secret_length> cursor_secret_{};  // set before the writer starts
  std::atomic<std::uint64_t> default_max_tokens_{0};
  std::vector<write_answer> answers_;  // writer thread only: those of the batch being written

  std::atomic<bool> write_failed_{false};
  bool disk_error_ = false;  // writer thread only: RocksDB itself failed the last write
  static constexpr std::chrono::milliseconds min_recovery_backoff{10};
  static constexpr std::chrono::milliseconds max_recovery_backoff{1000};
  std::chrono::milliseconds recovery_backoff_ = min_recovery_backoff;  // writer thread only
  std::atomic<std::uint64_t> queue_depth_{0};
  batch_counters counters_;
};

}  // namespace

std::unique_ptr<token_store> open_rocksdb_store(const rocksdb_options& options) {
  return std::make_unique<rocksdb_store>(options);
}

}  // namespace tokend::storage
