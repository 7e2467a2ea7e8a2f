// Byte layout of the RocksDB store's keys and values; see record_codec.hpp.
#include "storage/record_codec.hpp"

#include <algorithm>
#include <limits>

namespace tokend::storage::codec {
namespace {

// Flipping the sign bit maps signed order onto unsigned byte order.
constexpr std::uint64_t sign_bit = std::uint64_t{1} << 63;

constexpr std::size_t owner_key_length = 1 + 8;
constexpr std::size_t sequence_key_length = owner_key_length + 8;
constexpr std::size_t expiry_key_length = 1 + 8 + 8;

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

void put_digest(std::string& out, const core::key_digest& d) {
  out.append(reinterpret_cast<const char*>(d.data()), d.size());
}

constexpr char no_rate_limit = 0;
constexpr char has_rate_limit = 1;
constexpr std::size_t rate_limit_length = 1 + 3 * 4;

void put_rate_limit(std::string& out, const std::optional<core::rate_limit>& limit) {
  if (!limit) {
    out.push_back(no_rate_limit);
    return;
  }
  out.push_back(has_rate_limit);
  put_u32(out, limit->limit);
  put_u32(out, limit->window_seconds);
  put_u32(out, limit->burst);
}

// Reads what the put_* functions wrote; any shortfall makes ok() false instead of reading past the end.
class decoder {
 public:
  explicit decoder(std::string_view in) noexcept : in_(in) {}

  [[nodiscard]] std::uint64_t u64() noexcept { return read_be(8); }
  [[nodiscard]] std::int64_t i64() noexcept { return static_cast<std::int64_t>(read_be(8)); }
  [[nodiscard]] std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(read_be(4)); }
  [[nodiscard]] std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(read_be(1)); }

  // A length-prefixed string, valid as long as the input is.
  [[nodiscard]] std::string_view view() noexcept {
    const std::uint32_t n = u32();
    if (!need(n)) return {};
    const std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }

  [[nodiscard]] std::string bytes() { return std::string(view()); }

  [[nodiscard]] core::key_digest digest() noexcept {
    core::key_digest d{};
    if (!need(d.size())) return d;
    std::copy_n(in_.begin(), d.size(), reinterpret_cast<char*>(d.data()));
    in_.remove_prefix(d.size());
    return d;
  }

  // Reads the version byte: true for a format this code reads.
  [[nodiscard]] bool version(std::uint8_t& out) noexcept {
    out = u8();
    return ok_ && (out == format_v1 || out == format_v2 || out == format_version);
  }

  // The rate limit block of format 3; formats before it have none: no limit of the key's own.
  [[nodiscard]] std::optional<core::rate_limit> rate_limit(std::uint8_t version) noexcept {
    if (version != format_version) return std::nullopt;
    const std::uint8_t flag = u8();
    if (flag == no_rate_limit) return std::nullopt;
    if (flag != has_rate_limit) ok_ = false;  // a flag this code never writes: refused, not guessed
    core::rate_limit limit;
    limit.limit = u32();
    limit.window_seconds = u32();
    limit.burst = u32();
    return limit;
  }

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] bool done() const noexcept { return ok_ && in_.empty(); }

 private:
  [[nodiscard]] bool need(std::size_t n) noexcept {
    if (ok_ && in_.size() >= n) return true;
    ok_ = false;
    return false;
  }

  [[nodiscard]] std::uint64_t read_be(std::size_t n) noexcept {
    if (!need(n)) return 0;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(in_[i]);
    in_.remove_prefix(n);
    return v;
  }

  std::string_view in_;
  bool ok_ = true;
};

[[nodiscard]] std::string owner_key(char tag, core::user_id owner) {
  std::string key;
  key.reserve(sequence_key_length);
  key.push_back(tag);
  put_u64(key, owner);
  return key;
}

[[nodiscard]] std::string owner_upper_bound(char tag, core::user_id owner) {
  if (owner == std::numeric_limits<core::user_id>::max()) return std::string(1, static_cast<char>(tag + 1));
  return owner_key(tag, owner + 1);
}

}  // namespace

std::string record_key(const core::key_digest& digest) {
  std::string key;
  key.reserve(1 + digest.size());
  key.push_back(record_tag);
  put_digest(key, digest);
  return key;
}

std::string index_prefix(core::user_id owner) { return owner_key(index_tag, owner); }

std::string index_key(core::user_id owner, std::uint64_t sequence) {
  std::string key = owner_key(index_tag, owner);
  put_u64(key, sequence);
  return key;
}

std::string index_upper_bound(core::user_id owner) { return owner_upper_bound(index_tag, owner); }

std::string use_key(core::user_id owner, std::uint64_t sequence) {
  std::string key = owner_key(use_tag, owner);
  put_u64(key, sequence);
  return key;
}

std::string use_upper_bound(core::user_id owner) { return owner_upper_bound(use_tag, owner); }

std::string expiry_key(std::int64_t expires_at, std::uint64_t sequence) {
  std::string key;
  key.reserve(expiry_key_length);
  key.push_back(expiry_tag);
  put_u64(key, static_cast<std::uint64_t>(expires_at) ^ sign_bit);
  put_u64(key, sequence);
  return key;
}

std::optional<std::uint64_t> sequence_in(std::string_view key) noexcept {
  if (key.size() != sequence_key_length || (key[0] != index_tag && key[0] != use_tag)) return std::nullopt;
  decoder d(key.substr(owner_key_length));
  return d.u64();
}

std::optional<core::user_id> owner_in(std::string_view key) noexcept {
  if (key.size() != sequence_key_length || (key[0] != index_tag && key[0] != use_tag)) return std::nullopt;
  return decoder(key.substr(1)).u64();
}

std::optional<expiry_entry> decode_expiry_key(std::string_view key) noexcept {
  if (key.size() != expiry_key_length || key[0] != expiry_tag) return std::nullopt;
  decoder d(key.substr(1));
  expiry_entry e;
  e.expires_at = static_cast<std::int64_t>(d.u64() ^ sign_bit);
  e.sequence = d.u64();
  return e;
}

bool encodable(const core::token_record& r) noexcept {
  constexpr std::size_t max = std::numeric_limits<std::uint32_t>::max();
  return r.display_prefix.size() <= max && r.type.size() <= max && r.description.size() <= max;
}

std::string encode_record(const core::token_record& r, std::uint64_t sequence) {
  std::string v;
  v.reserve(1 + 8 + 8 + 8 + 8 + 12 + r.display_prefix.size() + r.type.size() + r.description.size() +
            rate_limit_length);
  v.push_back(format_version);
  put_u64(v, r.owner);
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_u64(v, sequence);
  put_u64(v, static_cast<std::uint64_t>(r.expires_at));
  put_bytes(v, r.display_prefix);
  put_bytes(v, r.type);
  put_bytes(v, r.description);
  put_rate_limit(v, r.rate_limit);
  return v;
}

std::string encode_index(const core::token_record& r) {
  std::string v;
  v.reserve(1 + 32 + 8 + 8 + 12 + r.display_prefix.size() + r.type.size() + r.description.size() +
            rate_limit_length);
  v.push_back(format_version);
  put_digest(v, r.digest);
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_u64(v, static_cast<std::uint64_t>(r.expires_at));
  put_bytes(v, r.display_prefix);
  put_bytes(v, r.type);
  put_bytes(v, r.description);
  put_rate_limit(v, r.rate_limit);
  return v;
}

std::optional<record_head> decode_record_head(std::string_view value) {
  decoder d(value);
  std::uint8_t version = 0;
  if (!d.version(version)) return std::nullopt;
  record_head head;
  head.owner = d.u64();
  (void)d.u64();  // created_at
  head.sequence = d.u64();
  if (version != format_v1) head.expires_at = d.i64();
  const std::string_view prefix = d.view();
  head.operator_key = d.view() == core::operator_type;
  (void)d.view();  // description
  head.rate_limit = d.rate_limit(version);
  if (!d.done()) return std::nullopt;
  head.display_prefix = prefix;
  return head;
}

std::optional<core::token_record> decode_record(const core::key_digest& digest, std::string_view value) {
  decoder d(value);
  std::uint8_t version = 0;
  if (!d.version(version)) return std::nullopt;
  core::token_record r;
  r.digest = digest;
  r.owner = d.u64();
  r.created_at = d.i64();
  r.id = id_of(d.u64());
  if (version != format_v1) r.expires_at = d.i64();
  r.display_prefix = d.bytes();
  r.type = d.bytes();
  r.description = d.bytes();
  r.rate_limit = d.rate_limit(version);
  if (!d.done()) return std::nullopt;
  return r;
}

std::optional<core::token_record> decode_index(std::string_view key, std::string_view value) {
  const auto sequence = sequence_in(key);
  if (!sequence || key[0] != index_tag) return std::nullopt;
  decoder d(value);
  std::uint8_t version = 0;
  if (!d.version(version)) return std::nullopt;
  core::token_record r;
  r.owner = decoder(key.substr(1)).u64();
  r.id = id_of(*sequence);
  r.digest = d.digest();
  r.created_at = d.i64();
  if (version != format_v1) r.expires_at = d.i64();
  r.display_prefix = d.bytes();
  r.type = d.bytes();
  r.description = d.bytes();
  r.rate_limit = d.rate_limit(version);
  if (!d.done()) return std::nullopt;
  return r;
}

std::optional<core::key_digest> decode_index_digest(std::string_view value) noexcept {
  decoder d(value);
  std::uint8_t version = 0;
  if (!d.version(version)) return std::nullopt;
  const core::key_digest digest = d.digest();
  if (!d.ok()) return std::nullopt;
  return digest;
}

std::string encode_last_use(std::int64_t minute) {
  std::string out;
  put_u64(out, static_cast<std::uint64_t>(minute));
  return out;
}

std::optional<std::int64_t> decode_last_use(std::string_view value) noexcept {
  decoder d(value);
  const std::int64_t minute = d.i64();
  if (!d.done()) return std::nullopt;
  return minute;
}

std::string encode_digest(const core::key_digest& digest) {
  std::string out;
  put_digest(out, digest);
  return out;
}

std::optional<core::key_digest> decode_digest(std::string_view value) noexcept {
  decoder d(value);
  const core::key_digest digest = d.digest();
  if (!d.done()) return std::nullopt;
  return digest;
}

std::string encode_sequence(std::uint64_t next) {
  std::string out;
  put_u64(out, next);
  return out;
}

std::optional<std::uint64_t> decode_sequence(std::string_view value) noexcept {
  decoder d(value);
  const std::uint64_t next = d.u64();
  if (!d.done()) return std::nullopt;
  return next;
}

std::string count_key(core::user_id owner) { return owner_key(count_tag, owner); }

std::string count_prefix() { return std::string(1, count_tag); }

std::string count_upper_bound() { return std::string(1, static_cast<char>(count_tag + 1)); }

std::optional<core::user_id> owner_in_count_key(std::string_view key) noexcept {
  if (key.size() != owner_key_length || key[0] != count_tag) return std::nullopt;
  return decoder(key.substr(1)).u64();
}

std::string encode_count(const owner_count& count) {
  std::string out;
  out.reserve(1 + 8 + 1 + 8);
  out.push_back(count_format);
  put_u64(out, count.tokens);
  if (!count.max_tokens) {
    out.push_back(0);
  } else {
    out.push_back(1);
    put_u64(out, *count.max_tokens);
  }
  return out;
}

std::optional<owner_count> decode_count(std::string_view value) noexcept {
  decoder d(value);
  if (d.u8() != count_format) return std::nullopt;
  owner_count count;
  count.tokens = d.u64();
  const std::uint8_t flag = d.u8();
  if (flag == 1) {
    count.max_tokens = d.u64();
  } else if (flag != 0) {
    return std::nullopt;  // a flag this code never writes: refused, not guessed
  }
  if (!d.done()) return std::nullopt;
  return count;
}

}  // namespace tokend::storage::codec
