// The PostgreSQL store's work: one job type per operation, and the queue the pool takes batches
// from. Storage thread only, except that jobs are built on the caller's thread.
#pragma once

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"
#include "storage/token_store.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tokend::storage::pg {

struct lookup_job {
  core::key_digest digest;
  token_store::lookup_handler handler;
};

struct create_job {
  core::token_record record;
  token_store::create_handler handler;
};

struct remove_job {
  token_ref ref;
  token_store::remove_handler handler;
};

struct list_job {
  core::user_id owner = 0;
  std::size_t offset = 0;
  std::size_t limit = 0;
  token_store::list_handler handler;
};

// A page by position: the tokens after `after_id`.
struct list_after_job {
  core::user_id owner = 0;
  std::uint64_t after_id = 0;
  std::size_t limit = 0;
  token_store::list_handler handler;
};

struct quota_job {
  core::user_id owner = 0;
  token_store::quota_handler handler;
};

struct set_max_tokens_job {
  core::user_id owner = 0;
  std::optional<std::uint64_t> max_tokens;
  token_store::quota_handler handler;
};

struct roll_job {
  roll_request request;
  token_store::roll_handler handler;
};

struct set_rate_limit_job {
  token_ref ref;
  std::optional<core::rate_limit> limit;
  token_store::remove_handler handler;
};

// Already a batch of its own: every use a flush collected, written by one statement.
struct record_uses_job {
  std::vector<key_use> uses;
  token_store::write_handler handler;
};

struct remove_expired_job {
  std::int64_t cutoff = 0;
  std::size_t limit = 0;
  token_store::sweep_handler handler;
};

// token_store::empty(), which waits for the answer on the caller's thread.
struct empty_job {
  std::function<void(boost::system::result<bool>)> handler;
};

// Rate-limit counts for the other processes (postgres_admits), NOTIFYed by one statement; nothing
// is stored.
struct share_admits_job {
  std::vector<std::string> payloads;
  token_store::write_handler handler;
};

using job = std::variant<lookup_job, create_job, remove_job, list_job, list_after_job, quota_job,
                         set_max_tokens_job, roll_job, set_rate_limit_job, record_uses_job,
                         remove_expired_job, empty_job, share_admits_job>;

// Calls a job's handler, emptied first: the worker's exception boundary can then tell which jobs
// still wait for an answer, and no job is ever answered twice.
template <class Handler, class Value>
void answer(Handler& handler, Value&& value) {
  Handler h = std::move(handler);
  handler = nullptr;
  h(std::forward<Value>(value));
}

// Answers a job with an error, unless it has been answered already.
void fail(job& j, core::errc e);

// Pending jobs in submission order. A batch is the first job that may run now with every queued
// job of the same type that shares its statement (creates and lookups; any other job runs alone).
class job_queue {
 public:
  void push(job j) { jobs_.push_back(std::move(j)); }
  [[nodiscard]] bool empty() const noexcept { return jobs_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return jobs_.size(); }

  // At most `max_batch` jobs. Empty when only creates wait and a create batch is in flight:
  // creates commit one batch at a time, so tokens list in the order their creates were submitted
  // (as with RocksDB's single writer), and the batch grows while the previous one commits. A batch
  // of creates is in flight until create_batch_done().
  [[nodiscard]] std::vector<job> take(std::size_t max_batch);
  void create_batch_done() noexcept { create_in_flight_ = false; }

  // Removes every job, failing each with `e`.
  void fail_all(core::errc e);

 private:
  std::deque<job> jobs_;
  bool create_in_flight_ = false;
};

}  // namespace tokend::storage::pg
