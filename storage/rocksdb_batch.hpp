// One write batch of the RocksDB store's writer: the writes taken from the queue applied one after
// the other to a single rocksdb::WriteBatch. Each write is checked against the database as the
// earlier writes of the same batch leave it, and its answer waits until the batch is durable.
#pragma once

#include "storage/pending_write.hpp"
#include "storage/record_codec.hpp"
#include "storage/token_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace tokend::storage {

// What a write answers once its batch is durable: its handler's argument.
using write_answer =
    std::variant<boost::system::result<std::uint64_t>, boost::system::result<core::key_digest>,
                 boost::system::result<rolled_token>, boost::system::error_code,
                 boost::system::result<std::vector<removed_token>>, boost::system::result<token_quota>>;

// Hands `answer` (made by batch_builder::add for this write) to `write`'s handler.
void deliver(pending_write& write, write_answer&& answer);

// Puts, last in `batch`, the marker saying the token counts are right as of this batch: the
// sequence number RocksDB will give the batch's last entry, when `batch` is the next write.
void put_counts_marker(const rocksdb::DB& db, rocksdb::WriteBatch& batch);

class batch_builder {
 public:
  // `next_sequence` is the writer's counter: every token created takes the next one. A create is
  // refused when its owner holds its own bound of tokens, else `default_max_tokens` (0: none).
  batch_builder(rocksdb::DB& db, std::uint64_t& next_sequence, std::uint64_t default_max_tokens)
      : db_(db), next_sequence_(next_sequence), default_max_tokens_(default_max_tokens) {}

  // Adds the changes of `write` and answers what it will answer once they are durable (an error
  // leaves the batch as it was). A sweep reads the expiry index from the database, not from this
  // batch: it must be the first write added.
  [[nodiscard]] write_answer add(const pending_write& write);

  // The batch, with the sequence counter when a token was created, the token counts that changed
  // and the counts' marker. Must be written next.
  [[nodiscard]] rocksdb::WriteBatch& finish();

 private:
  using error_code = boost::system::error_code;
  template <class T>
  using result = boost::system::result<T>;

  // A record as the earlier writes of this batch left it.
  struct found {
    bool exists = false;
    codec::record_head head;  // when it exists
  };
  struct overlay_entry {
    found state;
    std::string value;  // its 'k' value, while it exists
  };
  struct resolved {
    found state;
    core::key_digest digest{};
  };

  [[nodiscard]] result<std::uint64_t> create(const core::token_record& record);
  [[nodiscard]] result<core::key_digest> remove(const token_ref& ref);
  [[nodiscard]] result<rolled_token> roll(const roll_request& request);
  [[nodiscard]] result<core::key_digest> set_rate_limit(const token_ref& ref,
                                                        const std::optional<core::rate_limit>& limit);
  [[nodiscard]] error_code record_uses(const std::vector<key_use>& uses);
  [[nodiscard]] result<std::vector<removed_token>> remove_expired(std::int64_t cutoff, std::size_t limit);
  [[nodiscard]] result<token_quota> set_max_tokens(core::user_id owner,
                                                   const std::optional<std::uint64_t>& max_tokens);

  // The record with this digest.
  [[nodiscard]] result<found> current(const core::key_digest& digest);
  // The whole record with this digest, which exists.
  [[nodiscard]] result<core::token_record> whole(const core::key_digest& digest);
  // `ref`'s token, which exists only when `ref.owner` has it.
  [[nodiscard]] result<resolved> resolve(const token_ref& ref);
  // The owner's count as the earlier writes of this batch left it; kept in counts_ from then on.
  [[nodiscard]] result<codec::owner_count*> count_of(core::user_id owner);
  // The last use recorded for the token with this sequence, 0 when none.
  [[nodiscard]] result<std::int64_t> last_use(core::user_id owner, std::uint64_t sequence);

  // Puts the record, its index entry and its expiry entry, under its id's sequence.
  void put(const core::token_record& r, std::uint64_t sequence);
  // Stores a new token (its id and last use ignored) under the next sequence and answers its id.
  std::uint64_t insert(const core::token_record& r);
  // Deletes every entry of the token and counts it out of its owner's tokens, whose count must
  // have been read (count_of) first.
  void erase(const core::key_digest& digest, const codec::record_head& head);

  rocksdb::DB& db_;
  std::uint64_t& next_sequence_;
  const std::uint64_t first_sequence_ = next_sequence_;
  const std::uint64_t default_max_tokens_;
  rocksdb::WriteBatch batch_;
  std::unordered_map<core::key_digest, overlay_entry, core::key_digest_hash> records_;
  std::vector<core::key_digest> created_;                      // by sequence - first_sequence_
  std::unordered_map<std::uint64_t, std::int64_t> last_uses_;  // by sequence, those written here
  struct count_entry {
    codec::owner_count count;
    bool changed = false;
  };
  std::unordered_map<core::user_id, count_entry> counts_;  // those read or changed here
};

}  // namespace tokend::storage
