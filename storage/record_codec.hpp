// The byte layout of the RocksDB store: keys and values of token records, the per-user index, last
// uses, the expiry index and the sequence counter. Pure functions, no RocksDB types.
//
// Layout (all integers big-endian, so byte order is numeric order and range scans follow it):
//   'k' + digest(32)          → v3 | owner u64 | created_at i64 | sequence u64 | expires_at i64
//                                  | prefix | type | description | rate limit
//   'u' + owner u64 + seq u64 → v3 | digest(32) | created_at i64 | expires_at i64 | prefix | type
//                                  | description | rate limit
//   't' + owner u64 + seq u64 → last use i64 (the minute), only once a use is recorded
//   'e' + expires_at + seq u64 → digest(32), only for tokens that expire (expires_at != 0)
//   's'                       → next sequence u64
//   'n' + owner u64           → v1 | tokens u64 | own bound (flag byte: 0 none of its own, else 1
//                                  followed by the bound u64, 0 meaning unbounded); absent: no
//                                  tokens and no bound of its own
//   'm'                       → the RocksDB sequence number u64 as of which the 'n' counts are right
//   'c'                       → the list cursor secret, 32 bytes, made when the store is first opened
// Strings are u32-length-prefixed. A rate limit is a flag byte: 0 when the key has no limit of its
// own, else 1 followed by limit u32 | window u32 | burst u32. Values start with a format version
// byte: format 1 (written before expiry existed) has no expires_at field and reads as never
// expiring; formats 1 and 2 (written before rate limits) have no rate limit and read as keys with
// no limit of their own; only format 3 is written. The per-user index repeats what a list shows,
// so a list is a range scan with no point lookups, merged with the same user's last uses, kept
// apart so that a use does not rewrite the record. The sequence (global, persisted with every
// batch that creates) gives creation order even when two tokens share a created_at second, and a
// token's id is its sequence + 1. The expiry in an 'e' key has its sign bit flipped, so that byte
// order is the order of signed values. The 'n' counts (one per 'u' entry, so a rolled-out key
// counts until it is swept) change in the same batch as every create, roll, delete and sweep, so a
// create's bound is checked without counting. Every batch ends with 'm', the number RocksDB gives
// that entry; a binary before the counts never writes it, so any write of its (a create, a delete)
// leaves RocksDB's latest number past 'm': at open, when 'm' is missing or not the latest, the
// counts are rebuilt from the 'u' index before serving, keeping the own bounds.
#pragma once

#include "core/key.hpp"
#include "core/token.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::storage::codec {

inline constexpr char record_tag = 'k';
inline constexpr char index_tag = 'u';
inline constexpr char use_tag = 't';
inline constexpr char expiry_tag = 'e';
inline constexpr std::string_view sequence_key = "s";
inline constexpr char count_tag = 'n';
inline constexpr std::string_view counts_marker_key = "m";
inline constexpr std::string_view cursor_secret_key = "c";
inline constexpr std::size_t cursor_secret_length = 32;
inline constexpr char count_format = 1;
inline constexpr char format_v1 = 1;
inline constexpr char format_v2 = 2;
inline constexpr char format_version = 3;  // the format written

[[nodiscard]] constexpr std::uint64_t id_of(std::uint64_t sequence) noexcept { return sequence + 1; }
[[nodiscard]] constexpr std::uint64_t sequence_of(std::uint64_t id) noexcept { return id - 1; }

// What a lookup or a write needs to know of an existing record.
struct record_head {
  core::user_id owner = 0;
  std::uint64_t sequence = 0;
  std::int64_t expires_at = 0;
  bool operator_key = false;
  std::optional<core::rate_limit> rate_limit{};  // the key's own
  std::string display_prefix{};                  // six characters: no allocation
};

[[nodiscard]] std::string record_key(const core::key_digest& digest);
[[nodiscard]] std::string index_prefix(core::user_id owner);
[[nodiscard]] std::string index_key(core::user_id owner, std::uint64_t sequence);
// Exclusive upper bound of `owner`'s index entries.
[[nodiscard]] std::string index_upper_bound(core::user_id owner);
[[nodiscard]] std::string use_key(core::user_id owner, std::uint64_t sequence);
// Exclusive upper bound of `owner`'s last uses.
[[nodiscard]] std::string use_upper_bound(core::user_id owner);
[[nodiscard]] std::string expiry_key(std::int64_t expires_at, std::uint64_t sequence);
// The sequence at the end of an 'u' or 't' key, or nullopt when `key` is not one.
[[nodiscard]] std::optional<std::uint64_t> sequence_in(std::string_view key) noexcept;
// The owner in an 'u' or 't' key, or nullopt when `key` is not one.
[[nodiscard]] std::optional<core::user_id> owner_in(std::string_view key) noexcept;

struct expiry_entry {
  std::int64_t expires_at = 0;
  std::uint64_t sequence = 0;
};
[[nodiscard]] std::optional<expiry_entry> decode_expiry_key(std::string_view key) noexcept;

// Whether every string fits its u32 length prefix.
[[nodiscard]] bool encodable(const core::token_record& r) noexcept;
// The 'k' value of `r` (its digest and id are in the key and `sequence`).
[[nodiscard]] std::string encode_record(const core::token_record& r, std::uint64_t sequence);
// The 'u' value of `r`.
[[nodiscard]] std::string encode_index(const core::token_record& r);
// Reads the numbers, the type, the display prefix and the rate limit of a 'k' value, without
// copying the description.
[[nodiscard]] std::optional<record_head> decode_record_head(std::string_view value);
// The whole record of a 'k' value, its id included (no last use: that is kept apart).
[[nodiscard]] std::optional<core::token_record> decode_record(const core::key_digest& digest,
                                                              std::string_view value);
// The record of an 'u' entry, owner and id from its key (no last use: that is kept apart).
[[nodiscard]] std::optional<core::token_record> decode_index(std::string_view key, std::string_view value);
// Only the digest of an 'u' value.
[[nodiscard]] std::optional<core::key_digest> decode_index_digest(std::string_view value) noexcept;

[[nodiscard]] std::string encode_last_use(std::int64_t minute);
[[nodiscard]] std::optional<std::int64_t> decode_last_use(std::string_view value) noexcept;

// The 'e' value.
[[nodiscard]] std::string encode_digest(const core::key_digest& digest);
[[nodiscard]] std::optional<core::key_digest> decode_digest(std::string_view value) noexcept;

[[nodiscard]] std::string encode_sequence(std::uint64_t next);
[[nodiscard]] std::optional<std::uint64_t> decode_sequence(std::string_view value) noexcept;

// An owner's 'n' entry: how many tokens it holds and its own bound.
struct owner_count {
  std::uint64_t tokens = 0;
  std::optional<std::uint64_t> max_tokens{};  // nullopt: the default applies; 0: none
  friend bool operator==(const owner_count&, const owner_count&) = default;
};
[[nodiscard]] std::string count_key(core::user_id owner);
[[nodiscard]] std::string count_prefix();  // every 'n' key starts with it
// Exclusive upper bound of the 'n' keys.
[[nodiscard]] std::string count_upper_bound();
// The owner of an 'n' key, or nullopt when `key` is not one.
[[nodiscard]] std::optional<core::user_id> owner_in_count_key(std::string_view key) noexcept;
[[nodiscard]] std::string encode_count(const owner_count& count);
[[nodiscard]] std::optional<owner_count> decode_count(std::string_view value) noexcept;

}  // namespace tokend::storage::codec
