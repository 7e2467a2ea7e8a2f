// Byte layout of the RocksDB store's keys and values; see record_codec.hpp.
#include "storage/record_codec.hpp"

#include <algorithm>
#include <limits>

namespace tokend::storage::codec {
namespace {

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

// Reads what the put_* functions wrote; any shortfall makes ok() false instead of reading past the end.
class decoder {
 public:
  explicit decoder(std::string_view in) noexcept : in_(in) {}

  [[nodiscard]] std::uint64_t u64() noexcept { return read_be(8); }
  [[nodiscard]] std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(read_be(4)); }
  [[nodiscard]] std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(read_be(1)); }

  [[nodiscard]] std::string bytes() {
    const std::uint32_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }

  [[nodiscard]] core::key_digest digest() noexcept {
    core::key_digest d{};
    if (!need(d.size())) return d;
    std::copy_n(in_.begin(), d.size(), reinterpret_cast<char*>(d.data()));
    in_.remove_prefix(d.size());
    return d;
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

}  // namespace

std::string record_key(const core::key_digest& digest) {
  std::string key;
  key.reserve(1 + digest.size());
  key.push_back(record_tag);
  put_digest(key, digest);
  return key;
}

std::string index_prefix(core::user_id owner) {
  std::string key;
  key.reserve(17);
  key.push_back(index_tag);
  put_u64(key, owner);
  return key;
}

std::string index_key(core::user_id owner, std::uint64_t sequence) {
  std::string key = index_prefix(owner);
  put_u64(key, sequence);
  return key;
}

std::string index_upper_bound(core::user_id owner) {
  if (owner == std::numeric_limits<core::user_id>::max()) return std::string(1, index_tag + 1);
  return index_prefix(owner + 1);
}

bool encodable(const core::token_record& r) noexcept {
  constexpr std::size_t max = std::numeric_limits<std::uint32_t>::max();
  return r.display_prefix.size() <= max && r.type.size() <= max && r.description.size() <= max;
}

std::string encode_record(const core::token_record& r, std::uint64_t sequence) {
  std::string v;
  v.reserve(1 + 8 + 8 + 8 + 12 + r.display_prefix.size() + r.type.size() + r.description.size());
  v.push_back(format_version);
  put_u64(v, r.owner);
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_u64(v, sequence);
  put_bytes(v, r.display_prefix);
  put_bytes(v, r.type);
  put_bytes(v, r.description);
  return v;
}

std::string encode_index(const core::token_record& r) {
  std::string v;
  v.reserve(1 + 32 + 8 + 12 + r.display_prefix.size() + r.type.size() + r.description.size());
  v.push_back(format_version);
  put_digest(v, r.digest);
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_bytes(v, r.display_prefix);
  put_bytes(v, r.type);
  put_bytes(v, r.description);
  return v;
}

// What lookups and removals need from a record: only its head is decoded.

std::optional<record_head> decode_record_head(std::string_view value) noexcept {
  decoder d(value);
  if (d.u8() != format_version) return std::nullopt;
  record_head head;
  head.owner = d.u64();
  (void)d.u64();  // created_at
  head.sequence = d.u64();
  if (!d.ok()) return std::nullopt;
  return head;
}

std::optional<core::token_record> decode_index(core::user_id owner, std::string_view value) {
  decoder d(value);
  if (d.u8() != format_version) return std::nullopt;
  core::token_record r;
  r.owner = owner;
  r.digest = d.digest();
  r.created_at = static_cast<std::int64_t>(d.u64());
  r.display_prefix = d.bytes();
  r.type = d.bytes();
  r.description = d.bytes();
  if (!d.done()) return std::nullopt;
  return r;
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

}  // namespace tokend::storage::codec
