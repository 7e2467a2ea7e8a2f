// The byte layout of the RocksDB store: keys and values of token records, the per-user index and
// the sequence counter. Pure functions, no RocksDB types.
//
// Layout (all integers big-endian, so byte order is numeric order and range scans follow it):
//   'k' + digest(32)          → v1 | owner u64 | created_at i64 | sequence u64 | prefix | type | description
//   'u' + owner u64 + seq u64 → v1 | digest(32) | created_at i64 | prefix | type | description
//   's'                       → next sequence u64
// Strings are u32-length-prefixed. Values start with a format version byte so a later layout can
// be told apart from this one. The per-user index repeats what a list shows, so a list is a single
// range scan with no point lookups; the sequence (global, persisted with every batch that creates)
// gives creation order even when two tokens share a created_at second.
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
inline constexpr std::string_view sequence_key = "s";
inline constexpr char format_version = 1;

// What a write needs to know of an existing record.
struct record_head {
  core::user_id owner = 0;
  std::uint64_t sequence = 0;
};

[[nodiscard]] std::string record_key(const core::key_digest& digest);
[[nodiscard]] std::string index_prefix(core::user_id owner);
[[nodiscard]] std::string index_key(core::user_id owner, std::uint64_t sequence);
// Exclusive upper bound of `owner`'s index entries.
[[nodiscard]] std::string index_upper_bound(core::user_id owner);

// Whether every string fits its u32 length prefix.
[[nodiscard]] bool encodable(const core::token_record& r) noexcept;
[[nodiscard]] std::string encode_record(const core::token_record& r, std::uint64_t sequence);
[[nodiscard]] std::string encode_index(const core::token_record& r);
[[nodiscard]] std::optional<record_head> decode_record_head(std::string_view value) noexcept;
[[nodiscard]] std::optional<core::token_record> decode_index(core::user_id owner, std::string_view value);

[[nodiscard]] std::string encode_sequence(std::uint64_t next);
[[nodiscard]] std::optional<std::uint64_t> decode_sequence(std::string_view value) noexcept;

}  // namespace tokend::storage::codec
