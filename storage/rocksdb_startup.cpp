// The RocksDB store's work at open, before it serves: the list cursors' secret and the token
// counts (see rocksdb_startup.hpp).
#include "storage/rocksdb_startup.hpp"

#include "core/key.hpp"
#include "storage/record_codec.hpp"
#include "storage/rocksdb_batch.hpp"

#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace tokend::storage {
namespace {

using namespace codec;

constexpr std::uint32_t rebuild_part = 100'000;  // counts written per batch by a rebuild

[[noreturn]] void fail_open(const rocksdb_options& options, const std::string& what,
                            const rocksdb::Status& status) {
  throw std::runtime_error(what + " in '" + options.data_dir + "': " + status.ToString());
}

}  // namespace

std::array<std::uint8_t, cursor_secret_length> read_or_make_cursor_secret(rocksdb::DB& db,
                                                                          const rocksdb_options& options) {
  std::array<std::uint8_t, cursor_secret_length> secret{};
  std::string value;
  const rocksdb::Status status = db.Get(rocksdb::ReadOptions{}, rocksdb::Slice(cursor_secret_key), &value);
  if (status.ok()) {
    if (value.size() != secret.size())
      throw std::runtime_error("corrupt list cursor secret in '" + options.data_dir + "'");
    std::copy(value.begin(), value.end(), secret.begin());
    return secret;
  }
  if (!status.IsNotFound()) {
    throw std::runtime_error("cannot read the list cursor secret in '" + options.data_dir +
                             "': " + status.ToString());
  }
  // A fresh key's digest: 224 random bits from OpenSSL's CSPRNG, spread over 32 bytes.
  secret = core::digest_key(core::generate_key());
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const rocksdb::Status written =
      db.Put(write_options, rocksdb::Slice(cursor_secret_key),
             rocksdb::Slice(reinterpret_cast<const char*>(secret.data()), secret.size()));
  if (!written.ok()) {
    throw std::runtime_error("cannot store the list cursor secret in '" + options.data_dir +
                             "': " + written.ToString());
  }
  return secret;
}

void rebuild_counts_if_stale(rocksdb::DB& db, const rocksdb_options& options) {
  std::string value;
  const rocksdb::Status status = db.Get(rocksdb::ReadOptions{}, rocksdb::Slice(counts_marker_key), &value);
  if (status.ok() && decode_sequence(value) == db.GetLatestSequenceNumber()) return;
  if (!status.ok() && !status.IsNotFound())
    fail_open(options, "cannot read the token counts' marker", status);

  // The bounds operators gave are kept; only the numbers of tokens are counted again.
  std::map<core::user_id, owner_count> old_counts;
  {
    const std::string upper = count_upper_bound();
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;
    const std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read));
    for (it->Seek(count_prefix()); it->Valid(); it->Next()) {
      const auto owner = owner_in_count_key(it->key().ToStringView());
      const auto count = decode_count(it->value().ToStringView());
      if (!owner || !count) throw std::runtime_error("corrupt token count in '" + options.data_dir + "'");
      old_counts.emplace(*owner, *count);
    }
    if (!it->status().ok()) fail_open(options, "cannot read the token counts", it->status());
  }

  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  rocksdb::WriteBatch batch;
  const auto flush = [&] {
    const rocksdb::Status written = db.Write(write_options, &batch);
    if (!written.ok()) fail_open(options, "cannot write the token counts", written);
    batch.Clear();
  };
  const auto write = [&](core::user_id owner, const owner_count& count) {
    if (count.tokens == 0 && !count.max_tokens) {
      batch.Delete(count_key(owner));
    } else {
      batch.Put(count_key(owner), encode_count(count));
    }
    // Written a part at a time; the marker goes last, so an interrupted rebuild is done again.
    if (batch.Count() >= rebuild_part) flush();
  };
  const auto put = [&](core::user_id owner, std::uint64_t tokens) {
    const auto old = old_counts.find(owner);
    if (old == old_counts.end()) return write(owner, owner_count{tokens, std::nullopt});
    write(owner, owner_count{tokens, old->second.max_tokens});
    old_counts.erase(old);
  };

  std::size_t owners = 0;
  {
    const std::string lower(1, index_tag);
    const std::string upper(1, static_cast<char>(index_tag + 1));
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;
    read.fill_cache = false;  // one pass over everything: it would only evict what serving needs
    const std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read));
    std::optional<core::user_id> owner;
    std::uint64_t tokens = 0;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      const auto in = owner_in(it->key().ToStringView());
      if (!in) throw std::runtime_error("corrupt index entry in '" + options.data_dir + "'");
      if (in != owner) {
        if (owner) put(*owner, tokens);
        owner = in;
        tokens = 0;
        ++owners;
      }
      ++tokens;
    }
    if (!it->status().ok()) fail_open(options, "cannot read the index to count tokens", it->status());
    if (owner) put(*owner, tokens);
  }
  for (const auto& [owner, count] : old_counts) write(owner, owner_count{0, count.max_tokens});
  put_counts_marker(db, batch);
  flush();
  if (options.log && (owners > 0 || status.ok())) {  // not for a store just made
    options.log(false, "counted the tokens of " + std::to_string(owners) +
                           " users again: the store was written by a version without counts");
  }
}

}  // namespace tokend::storage
