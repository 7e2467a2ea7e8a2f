// One write batch of the RocksDB store's writer; see rocksdb_batch.hpp.
#include "storage/rocksdb_batch.hpp"

#include "core/error.hpp"

#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace tokend::storage {
namespace {

using boost::system::error_code;
using namespace codec;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

// The argument type of a write's handler.
template <class Handler>
struct handler_argument;
template <class Argument>
struct handler_argument<std::function<void(Argument)>> {
  using type = Argument;
};

}  // namespace

void deliver(pending_write& write, write_answer&& answer) {
  std::visit(
      [&answer](auto& w) {
        using argument = typename handler_argument<decltype(w.handler)>::type;
        w.handler(std::get<argument>(std::move(answer)));
      },
      write);
}

void put_counts_marker(const rocksdb::DB& db, rocksdb::WriteBatch& batch) {
  // RocksDB numbers every entry of a batch in turn from its latest number on; this one is last.
  batch.Put(rocksdb::Slice(counts_marker_key),
            encode_sequence(db.GetLatestSequenceNumber() + batch.Count() + 1));
}

write_answer batch_builder::add(const pending_write& write) {
  return std::visit(
      [this](const auto& w) -> write_answer {
        using type = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<type, create_write>) {
          return create(w.record);
        } else if constexpr (std::is_same_v<type, remove_write>) {
          return remove(w.ref);
        } else if constexpr (std::is_same_v<type, roll_write>) {
          return roll(w.request);
        } else if constexpr (std::is_same_v<type, limit_write>) {
          return set_rate_limit(w.ref, w.limit);
        } else if constexpr (std::is_same_v<type, uses_write>) {
          return record_uses(w.uses);
        } else if constexpr (std::is_same_v<type, sweep_write>) {
          return remove_expired(w.cutoff, w.limit);
        } else {
          return set_max_tokens(w.owner, w.max_tokens);
        }
      },
      write);
}

rocksdb::WriteBatch& batch_builder::finish() {
  for (const auto& [owner, entry] : counts_) {
    if (!entry.changed) continue;
    if (entry.count.tokens == 0 && !entry.count.max_tokens) {
      batch_.Delete(count_key(owner));
    } else {
      batch_.Put(count_key(owner), encode_count(entry.count));
    }
  }
  // The counter advances even if this write fails: gaps are harmless, reuse would not be.
  if (next_sequence_ != first_sequence_)
    batch_.Put(rocksdb::Slice(sequence_key), encode_sequence(next_sequence_));
  if (batch_.Count() > 0) put_counts_marker(db_, batch_);
  return batch_;
}

boost::system::result<std::uint64_t> batch_builder::create(const core::token_record& record) {
  const auto state = current(record.digest);
  if (!state) return state.error();
  // Digests of random 224-bit keys do not collide: this is a caller bug, and overwriting would hand
  // someone else's token to this owner.
  if (state->exists) return error(core::errc::internal);
  if (!encodable(record)) return error(core::errc::bad_request);
  const auto held = count_of(record.owner);
  if (!held) return held.error();
  owner_count& count = **held;
  const std::uint64_t bound = count.max_tokens.value_or(default_max_tokens_);
  if (bound != 0 && count.tokens >= bound) return error(core::errc::quota_exceeded);
  ++count.tokens;
  counts_[record.owner].changed = true;
  return insert(record);
}

boost::system::result<core::key_digest> batch_builder::remove(const token_ref& ref) {
  const auto target = resolve(ref);
  if (!target) return target.error();
  if (!target->state.exists) return error(core::errc::not_found);
  if (const auto held = count_of(ref.owner); !held) return held.error();
  erase(target->digest, target->state.head);
  return target->digest;
}

boost::system::result<rolled_token> batch_builder::roll(const roll_request& request) {
  const auto target = resolve(request.old);
  if (!target) return target.error();
  if (!target->state.exists || core::expired(target->state.head.expires_at, request.now))
    return error(core::errc::not_found);
  const auto clash = current(request.digest);
  if (!clash) return clash.error();
  if (clash->exists) return error(core::errc::internal);  // as for a create
  auto old = whole(target->digest);
  if (!old) return old.error();
  const auto held = count_of(request.old.owner);  // read before anything is written
  if (!held) return held.error();

  rolled_token out;
  out.fresh = *old;  // the old key's own rate limit included
  out.fresh.digest = request.digest;
  out.fresh.display_prefix = request.display_prefix;
  out.fresh.created_at = request.now;
  out.fresh.expires_at = request.expires_at;
  if (request.rate_limit.replace) out.fresh.rate_limit = request.rate_limit.limit;
  if (!encodable(out.fresh)) return error(core::errc::bad_request);

  // The old key's life only ever shortens.
  if (old->expires_at == 0 || request.old_expires_at < old->expires_at) {
    const std::uint64_t sequence = target->state.head.sequence;
    if (old->expires_at != 0) batch_.Delete(expiry_key(old->expires_at, sequence));
    old->expires_at = request.old_expires_at;
    put(*old, sequence);
  }
  out.old_digest = old->digest;
  out.old_id = old->id;
  out.old_expires_at = old->expires_at;
  // The new key is counted as the owner's until the old one expires and is swept, but a roll is
  // never refused by the bound: it replaces a key, it does not add one.
  ++(*held)->tokens;
  counts_[request.old.owner].changed = true;
  out.fresh.id = insert(out.fresh);
  return out;
}

boost::system::result<core::key_digest> batch_builder::set_rate_limit(
    const token_ref& ref, const std::optional<core::rate_limit>& limit) {
  const auto target = resolve(ref);
  if (!target) return target.error();
  if (!target->state.exists) return error(core::errc::not_found);
  auto record = whole(target->digest);
  if (!record) return record.error();
  // The record and its index entry (a list shows the limit) are rewritten, the expiry entry put
  // again unchanged; the last use, kept apart, is not touched.
  record->rate_limit = limit;
  put(*record, target->state.head.sequence);
  return target->digest;
}

error_code batch_builder::record_uses(const std::vector<key_use>& uses) {
  // Read first, written after: a failed read leaves nothing of this write in the batch.
  struct update {
    core::user_id owner = 0;
    std::int64_t minute = 0;
  };
  std::unordered_map<std::uint64_t, update> updates;  // by sequence
  for (const key_use& use : uses) {
    const auto state = current(use.digest);
    if (!state) return state.error();
    if (!state->exists) continue;  // gone: ignored
    const record_head& head = state->head;
    if (const auto it = updates.find(head.sequence); it != updates.end()) {
      it->second.minute = std::max(it->second.minute, use.minute);
      continue;
    }
    const auto last = last_use(head.owner, head.sequence);
    if (!last) return last.error();
    if (use.minute > *last) updates.emplace(head.sequence, update{head.owner, use.minute});
  }
  for (const auto& [sequence, u] : updates) {
    batch_.Put(use_key(u.owner, sequence), encode_last_use(u.minute));
    last_uses_[sequence] = u.minute;
  }
  return {};
}

boost::system::result<std::vector<removed_token>> batch_builder::remove_expired(std::int64_t cutoff,
                                                                                std::size_t limit) {
  const std::string lower(1, expiry_tag);
  const std::string upper(1, static_cast<char>(expiry_tag + 1));
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper_slice;
  const std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(read));

  // Read first, deleted after: a failed read leaves nothing of this write in the batch.
  std::vector<resolved> expired;
  std::vector<std::string> stale;
  for (it->Seek(lower); it->Valid() && expired.size() < limit && stale.size() <= limit; it->Next()) {
    const auto entry = decode_expiry_key(it->key().ToStringView());
    const auto digest = decode_digest(it->value().ToStringView());
    if (!entry || !digest) return error(core::errc::internal);
    if (entry->expires_at >= cutoff) break;
    const auto state = current(*digest);
    if (!state) return state.error();
    if (!state->exists || state->head.sequence != entry->sequence ||
        state->head.expires_at != entry->expires_at) {
      // An entry its token does not match: nothing writes one, but it must not stop the sweep.
      stale.push_back(it->key().ToString());
      continue;
    }
    if (const auto held = count_of(state->head.owner); !held) return held.error();
    expired.push_back({*state, *digest});
  }
  if (!it->status().ok()) return error(core::errc::unavailable);

  std::vector<removed_token> removed;
  removed.reserve(expired.size());
  for (const resolved& r : expired) {
    erase(r.digest, r.state.head);
    removed.push_back({r.state.head.owner, r.digest});
  }
  for (const std::string& key : stale) batch_.Delete(key);
  return removed;
}

boost::system::result<token_quota> batch_builder::set_max_tokens(
    core::user_id owner, const std::optional<std::uint64_t>& max_tokens) {
  const auto held = count_of(owner);
  if (!held) return held.error();
  (*held)->max_tokens = max_tokens;
  counts_[owner].changed = true;
  return token_quota{(*held)->tokens, max_tokens};
}

boost::system::result<owner_count*> batch_builder::count_of(core::user_id owner) {
  if (const auto it = counts_.find(owner); it != counts_.end()) return &it->second.count;
  rocksdb::PinnableSlice value;
  const rocksdb::Status status =
      db_.Get(rocksdb::ReadOptions{}, db_.DefaultColumnFamily(), count_key(owner), &value);
  owner_count count;
  if (status.ok()) {
    const auto decoded = decode_count(value.ToStringView());
    if (!decoded) return error(core::errc::internal);
    count = *decoded;
  } else if (!status.IsNotFound()) {
    return error(core::errc::unavailable);
  }
  return &counts_.emplace(owner, count_entry{count, false}).first->second.count;
}

boost::system::result<batch_builder::found> batch_builder::current(const core::key_digest& digest) {
  if (const auto it = records_.find(digest); it != records_.end()) return it->second.state;
  rocksdb::PinnableSlice value;
  const rocksdb::Status status =
      db_.Get(rocksdb::ReadOptions{}, db_.DefaultColumnFamily(), record_key(digest), &value);
  if (status.IsNotFound()) return found{};
  if (!status.ok()) return error(core::errc::unavailable);
  const auto head = decode_record_head(value.ToStringView());
  if (!head) return error(core::errc::internal);
  return found{true, *head};
}

boost::system::result<core::token_record> batch_builder::whole(const core::key_digest& digest) {
  std::optional<core::token_record> record;
  if (const auto it = records_.find(digest); it != records_.end()) {
    record = decode_record(digest, it->second.value);
  } else {
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_.Get(rocksdb::ReadOptions{}, db_.DefaultColumnFamily(), record_key(digest), &value);
    if (!status.ok()) return error(core::errc::unavailable);  // it was there a moment ago
    record = decode_record(digest, value.ToStringView());
  }
  if (!record) return error(core::errc::internal);
  return std::move(*record);
}

boost::system::result<batch_builder::resolved> batch_builder::resolve(const token_ref& ref) {
  resolved out;
  std::optional<std::uint64_t> sequence;  // when the ref is an id
  if (const auto* by_digest = std::get_if<core::key_digest>(&ref.which)) {
    out.digest = *by_digest;
  } else {
    const std::uint64_t id = std::get<std::uint64_t>(ref.which);
    if (id == 0) return out;
    sequence = sequence_of(id);
    if (*sequence >= first_sequence_) {
      // Created by this batch, if at all.
      if (*sequence - first_sequence_ >= created_.size()) return out;
      out.digest = created_[*sequence - first_sequence_];
    } else {
      rocksdb::PinnableSlice value;
      const rocksdb::Status status =
          db_.Get(rocksdb::ReadOptions{}, db_.DefaultColumnFamily(), index_key(ref.owner, *sequence), &value);
      if (status.IsNotFound()) return out;
      if (!status.ok()) return error(core::errc::unavailable);
      const auto indexed = decode_index_digest(value.ToStringView());
      if (!indexed) return error(core::errc::internal);
      out.digest = *indexed;
    }
  }
  const auto state = current(out.digest);
  if (!state) return state.error();
  // Someone else's token is "not found" too: a caller must not learn which tokens exist. An id
  // whose token went in this batch may name a digest created again since, under another id.
  out.state = *state;
  if (out.state.head.owner != ref.owner || (sequence && out.state.head.sequence != *sequence)) {
    out.state.exists = false;
  }
  return out;
}

boost::system::result<std::int64_t> batch_builder::last_use(core::user_id owner, std::uint64_t sequence) {
  if (const auto it = last_uses_.find(sequence); it != last_uses_.end()) return it->second;
  rocksdb::PinnableSlice value;
  const rocksdb::Status status =
      db_.Get(rocksdb::ReadOptions{}, db_.DefaultColumnFamily(), use_key(owner, sequence), &value);
  if (status.IsNotFound()) return 0;
  if (!status.ok()) return error(core::errc::unavailable);
  const auto minute = decode_last_use(value.ToStringView());
  if (!minute) return error(core::errc::internal);
  return *minute;
}

void batch_builder::put(const core::token_record& r, std::uint64_t sequence) {
  std::string value = encode_record(r, sequence);
  batch_.Put(record_key(r.digest), value);
  batch_.Put(index_key(r.owner, sequence), encode_index(r));
  if (r.expires_at != 0) batch_.Put(expiry_key(r.expires_at, sequence), encode_digest(r.digest));
  overlay_entry& entry = records_[r.digest];
  entry.state = found{true, record_head{r.owner, sequence, r.expires_at, r.type == core::operator_type,
                                        r.rate_limit, r.display_prefix}};
  entry.value = std::move(value);
}

std::uint64_t batch_builder::insert(const core::token_record& r) {
  const std::uint64_t sequence = next_sequence_++;
  created_.push_back(r.digest);
  put(r, sequence);
  return id_of(sequence);
}

void batch_builder::erase(const core::key_digest& digest, const record_head& head) {
  batch_.Delete(record_key(digest));
  batch_.Delete(index_key(head.owner, head.sequence));
  batch_.Delete(use_key(head.owner, head.sequence));
  if (head.expires_at != 0) batch_.Delete(expiry_key(head.expires_at, head.sequence));
  overlay_entry& entry = records_[digest];
  entry.state = found{};
  entry.value.clear();
  last_uses_.erase(head.sequence);
  count_entry& count = counts_.at(head.owner);
  if (count.count.tokens > 0) --count.count.tokens;  // never below: a stale count must not wrap
  count.changed = true;
}

}  // namespace tokend::storage
