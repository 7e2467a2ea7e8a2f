// The RocksDB store's byte layout: format 3 round trips, format 1 values (written before expiry
// existed) and format 2 values (written before rate limits) still read, and truncated or garbled
// values are refused instead of misread; the token counts and their keys.
#define BOOST_TEST_MODULE record_codec_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "core/token.hpp"
#include "storage/record_codec.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace core = tokend::core;
namespace codec = tokend::storage::codec;

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_string(std::string& out, std::string_view s) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((s.size() >> shift) & 0xff));
  out.append(s);
}

[[nodiscard]] core::token_record sample(std::string type = "admin") {
  const std::string key = core::generate_key();
  core::token_record r;
  r.digest = core::digest_key(key);
  r.display_prefix = key.substr(0, core::display_prefix_length);
  r.description = "clé ☃, a description";
  r.type = std::move(type);
  r.created_at = 1'700'000'000;
  r.owner = 42;
  r.expires_at = 1'800'000'000;
  return r;
}

// A 'k' value exactly as format 1 wrote it.
[[nodiscard]] std::string v1_record(const core::token_record& r, std::uint64_t sequence) {
  std::string v(1, '\1');
  put_u64(v, r.owner);
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_u64(v, sequence);
  put_string(v, r.display_prefix);
  put_string(v, r.type);
  put_string(v, r.description);
  return v;
}

// A 'k' value exactly as format 2 wrote it.
[[nodiscard]] std::string v2_record(const core::token_record& r, std::uint64_t sequence) {
  std::string v(1, '\2');
  put_u64(v, r.owner);
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_u64(v, sequence);
  put_u64(v, static_cast<std::uint64_t>(r.expires_at));
  put_string(v, r.display_prefix);
  put_string(v, r.type);
  put_string(v, r.description);
  return v;
}

// An 'u' value exactly as format 2 wrote it.
[[nodiscard]] std::string v2_index(const core::token_record& r) {
  std::string v(1, '\2');
  v.append(reinterpret_cast<const char*>(r.digest.data()), r.digest.size());
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_u64(v, static_cast<std::uint64_t>(r.expires_at));
  put_string(v, r.display_prefix);
  put_string(v, r.type);
  put_string(v, r.description);
  return v;
}

// An 'u' value exactly as format 1 wrote it.
[[nodiscard]] std::string v1_index(const core::token_record& r) {
  std::string v(1, '\1');
  v.append(reinterpret_cast<const char*>(r.digest.data()), r.digest.size());
  put_u64(v, static_cast<std::uint64_t>(r.created_at));
  put_string(v, r.display_prefix);
  put_string(v, r.type);
  put_string(v, r.description);
  return v;
}

// RocksDB's key order (bytes compared unsigned), spelled out: Boost.Test would compare two strings
// element by element as (signed) chars.
[[nodiscard]] bool before(std::string_view a, std::string_view b) { return a.compare(b) < 0; }

void check_same(const core::token_record& got, const core::token_record& want) {
  BOOST_TEST((got.digest == want.digest));
  BOOST_TEST(got.display_prefix == want.display_prefix);
  BOOST_TEST(got.description == want.description);
  BOOST_TEST(got.type == want.type);
  BOOST_TEST(got.created_at == want.created_at);
  BOOST_TEST(got.owner == want.owner);
  BOOST_TEST(got.expires_at == want.expires_at);
  BOOST_TEST(got.id == want.id);
  BOOST_TEST(got.last_used_at == 0);
  BOOST_TEST((got.rate_limit == want.rate_limit));
}

// Every decoder of whole values refuses each shorter prefix of `value` and `value` with a byte more.
template <class Decode>
void refuses_truncation_and_excess(const std::string& value, Decode decode) {
  BOOST_REQUIRE(decode(value));
  for (std::size_t n = 0; n < value.size(); ++n) {
    BOOST_TEST_CONTEXT("length " << n) { BOOST_TEST(!decode(value.substr(0, n))); }
  }
  BOOST_TEST(!decode(value + 'x'));
}

}  // namespace

BOOST_AUTO_TEST_CASE(format_3_round_trips) {
  auto r = sample();
  r.id = codec::id_of(16);
  const std::string record = codec::encode_record(r, 16);
  BOOST_TEST(record[0] == codec::format_version);
  BOOST_TEST(codec::format_version == 3);
  const auto whole = codec::decode_record(r.digest, record);
  BOOST_REQUIRE(whole.has_value());
  check_same(*whole, r);
  const auto head = codec::decode_record_head(record);
  BOOST_REQUIRE(head.has_value());
  BOOST_TEST(head->owner == 42u);
  BOOST_TEST(head->sequence == 16u);
  BOOST_TEST(head->expires_at == 1'800'000'000);
  BOOST_TEST(!head->operator_key);
  BOOST_TEST(!head->rate_limit.has_value());
  BOOST_TEST(head->display_prefix == r.display_prefix);

  const std::string index = codec::encode_index(r);
  BOOST_TEST(index[0] == codec::format_version);
  const auto listed = codec::decode_index(codec::index_key(42, 16), index);
  BOOST_REQUIRE(listed.has_value());
  check_same(*listed, r);
  BOOST_TEST((codec::decode_index_digest(index) == r.digest));

  const auto op = sample(std::string(core::operator_type));
  BOOST_TEST(codec::decode_record_head(codec::encode_record(op, 3))->operator_key);
}

// A key's own limit, the largest values a limit takes, and {0, ...}: a key exempt from the default,
// which is not the same as no limit of its own.
BOOST_AUTO_TEST_CASE(format_3_keeps_a_keys_own_rate_limit) {
  for (const core::rate_limit limit :
       {core::rate_limit{100, 60, 250},
        core::rate_limit{core::max_rate_limit, core::max_rate_window_seconds, core::max_rate_limit},
        core::rate_limit{0, 1, 0}, core::rate_limit{7, 1, 0}}) {
    BOOST_TEST_CONTEXT("limit " << limit.limit << "/" << limit.window_seconds << " burst " << limit.burst) {
      auto r = sample();
      r.rate_limit = limit;
      r.id = codec::id_of(8);
      const std::string record = codec::encode_record(r, 8);
      const auto whole = codec::decode_record(r.digest, record);
      BOOST_REQUIRE(whole.has_value());
      check_same(*whole, r);
      const auto head = codec::decode_record_head(record);
      BOOST_REQUIRE(head.has_value());
      BOOST_TEST((head->rate_limit == std::optional<core::rate_limit>{limit}));
      BOOST_TEST(head->display_prefix == r.display_prefix);
      BOOST_TEST(head->sequence == 8u);
      const auto listed = codec::decode_index(codec::index_key(42, 8), codec::encode_index(r));
      BOOST_REQUIRE(listed.has_value());
      check_same(*listed, r);
    }
  }
}

BOOST_AUTO_TEST_CASE(format_2_reads_as_no_own_rate_limit) {
  auto r = sample();
  r.id = codec::id_of(6);
  const auto head = codec::decode_record_head(v2_record(r, 6));
  BOOST_REQUIRE(head.has_value());
  BOOST_TEST(head->owner == 42u);
  BOOST_TEST(head->sequence == 6u);
  BOOST_TEST(head->expires_at == 1'800'000'000);
  BOOST_TEST(!head->rate_limit.has_value());
  BOOST_TEST(head->display_prefix == r.display_prefix);
  const auto whole = codec::decode_record(r.digest, v2_record(r, 6));
  BOOST_REQUIRE(whole.has_value());
  check_same(*whole, r);
  const auto listed = codec::decode_index(codec::index_key(42, 6), v2_index(r));
  BOOST_REQUIRE(listed.has_value());
  check_same(*listed, r);
  BOOST_TEST((codec::decode_index_digest(v2_index(r)) == r.digest));
}

BOOST_AUTO_TEST_CASE(ids_are_sequences_plus_one) {
  BOOST_TEST(codec::id_of(0) == 1u);
  BOOST_TEST(codec::sequence_of(codec::id_of(77)) == 77u);
}

BOOST_AUTO_TEST_CASE(format_1_reads_as_never_expiring) {
  auto r = sample();
  r.expires_at = 0;
  r.id = codec::id_of(5);
  const auto head = codec::decode_record_head(v1_record(r, 5));
  BOOST_REQUIRE(head.has_value());
  BOOST_TEST(head->owner == 42u);
  BOOST_TEST(head->sequence == 5u);
  BOOST_TEST(head->expires_at == 0);
  BOOST_TEST(!head->operator_key);
  BOOST_TEST(!head->rate_limit.has_value());
  BOOST_TEST(head->display_prefix == r.display_prefix);
  const auto whole = codec::decode_record(r.digest, v1_record(r, 5));
  BOOST_REQUIRE(whole.has_value());
  check_same(*whole, r);
  const auto listed = codec::decode_index(codec::index_key(42, 5), v1_index(r));
  BOOST_REQUIRE(listed.has_value());
  check_same(*listed, r);
  BOOST_TEST((codec::decode_index_digest(v1_index(r)) == r.digest));
}

BOOST_AUTO_TEST_CASE(truncated_or_garbled_values_are_refused) {
  const auto r = sample();
  auto limited = sample();
  limited.rate_limit = core::rate_limit{100, 60, 250};
  const auto head = [](std::string_view v) { return codec::decode_record_head(v).has_value(); };
  const auto whole = [&r](std::string_view v) { return codec::decode_record(r.digest, v).has_value(); };
  const std::string key = codec::index_key(42, 1);
  const auto listed = [&key](std::string_view v) { return codec::decode_index(key, v).has_value(); };
  // Each shorter prefix of a limited key's value includes those that end inside its rate block.
  for (const std::string& value :
       {codec::encode_record(r, 1), codec::encode_record(limited, 1), v2_record(r, 1), v1_record(r, 1)}) {
    refuses_truncation_and_excess(value, head);
    refuses_truncation_and_excess(value, whole);
  }
  for (const std::string& value :
       {codec::encode_index(r), codec::encode_index(limited), v2_index(r), v1_index(r)})
    refuses_truncation_and_excess(value, listed);

  // A rate block whose flag is neither 0 nor 1.
  for (const char flag : {'\2', '\xff'}) {
    std::string record = codec::encode_record(r, 1);
    std::string index = codec::encode_index(r);
    BOOST_REQUIRE(record.back() == '\0');
    BOOST_REQUIRE(index.back() == '\0');
    record.back() = flag;
    index.back() = flag;
    BOOST_TEST(!codec::decode_record_head(record));
    BOOST_TEST(!codec::decode_record(r.digest, record));
    BOOST_TEST(!codec::decode_index(key, index));
  }

  // A version this code does not know, and a length running past the end.
  for (const char version : {'\0', '\4', '\xff'}) {
    std::string record = codec::encode_record(r, 1);
    std::string index = codec::encode_index(r);
    record[0] = version;
    index[0] = version;
    BOOST_TEST(!codec::decode_record_head(record));
    BOOST_TEST(!codec::decode_record(r.digest, record));
    BOOST_TEST(!codec::decode_index(key, index));
    BOOST_TEST(!codec::decode_index_digest(index));
  }
  std::string oversized = codec::encode_record(r, 1);
  oversized[1 + 8 * 4] = '\x7f';  // the display prefix's length
  BOOST_TEST(!codec::decode_record_head(oversized));
  BOOST_TEST(!codec::decode_index_digest(std::string(1, codec::format_version) + "short"));
  // An index value under a key that is not an index key.
  BOOST_TEST(!codec::decode_index(codec::use_key(42, 1), codec::encode_index(r)));
  BOOST_TEST(!codec::decode_index(key.substr(1), codec::encode_index(r)));

  refuses_truncation_and_excess(codec::encode_last_use(1'700'000'040),
                                [](std::string_view v) { return codec::decode_last_use(v).has_value(); });
  refuses_truncation_and_excess(codec::encode_digest(r.digest),
                                [](std::string_view v) { return codec::decode_digest(v).has_value(); });
  refuses_truncation_and_excess(codec::encode_sequence(9),
                                [](std::string_view v) { return codec::decode_sequence(v).has_value(); });
}

BOOST_AUTO_TEST_CASE(small_values_round_trip) {
  BOOST_TEST(*codec::decode_last_use(codec::encode_last_use(1'700'000'040)) == 1'700'000'040);
  const auto r = sample();
  BOOST_TEST((*codec::decode_digest(codec::encode_digest(r.digest)) == r.digest));
  BOOST_TEST(*codec::decode_sequence(codec::encode_sequence(123)) == 123u);
  BOOST_TEST(*codec::sequence_in(codec::index_key(7, 99)) == 99u);
  BOOST_TEST(*codec::sequence_in(codec::use_key(7, 98)) == 98u);
  BOOST_TEST(!codec::sequence_in(codec::record_key(r.digest)));
  BOOST_TEST(!codec::sequence_in(codec::index_prefix(7)));
}

// A sweep walks the expiry index in key order: that must be the order of expiries, then sequences.
BOOST_AUTO_TEST_CASE(expiry_keys_sort_by_expiry_then_sequence) {
  constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::pair<std::int64_t, std::uint64_t>> ordered = {
      {min, 0}, {-1, 5}, {1, 0}, {1, 1}, {256, 0}, {1'700'000'000, 3}, {max, 0}};
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    const std::string key = codec::expiry_key(ordered[i].first, ordered[i].second);
    BOOST_TEST(key[0] == codec::expiry_tag);
    const auto entry = codec::decode_expiry_key(key);
    BOOST_REQUIRE(entry.has_value());
    BOOST_TEST(entry->expires_at == ordered[i].first);
    BOOST_TEST(entry->sequence == ordered[i].second);
    if (i > 0) BOOST_TEST(before(codec::expiry_key(ordered[i - 1].first, ordered[i - 1].second), key));
  }
  BOOST_TEST(!codec::decode_expiry_key(codec::expiry_key(1, 1).substr(1)));
  BOOST_TEST(!codec::decode_expiry_key(codec::index_key(1, 1)));
}

BOOST_AUTO_TEST_CASE(a_users_ranges_end_before_the_next_users) {
  BOOST_TEST(
      before(codec::index_key(7, std::numeric_limits<std::uint64_t>::max()), codec::index_upper_bound(7)));
  BOOST_TEST(!before(codec::index_key(8, 0), codec::index_upper_bound(7)));
  BOOST_TEST(before(codec::use_key(7, std::numeric_limits<std::uint64_t>::max()), codec::use_upper_bound(7)));
  BOOST_TEST(!before(codec::use_key(8, 0), codec::use_upper_bound(7)));
  constexpr auto last = std::numeric_limits<core::user_id>::max();
  BOOST_TEST(before(codec::use_key(last, 1), codec::use_upper_bound(last)));
  BOOST_TEST(!before(codec::index_prefix(0), codec::use_upper_bound(last)));  // 't' < 'u'
}

BOOST_AUTO_TEST_CASE(token_counts_round_trip_and_garbled_ones_are_refused) {
  for (const codec::owner_count count : {codec::owner_count{0, std::nullopt}, codec::owner_count{3, 0},
                                         codec::owner_count{std::numeric_limits<std::uint64_t>::max(), 7}}) {
    const std::string value = codec::encode_count(count);
    BOOST_TEST((codec::decode_count(value) == count));
    for (std::size_t n = 0; n < value.size(); ++n) BOOST_TEST(!codec::decode_count(value.substr(0, n)));
    BOOST_TEST(!codec::decode_count(value + '\0'));
  }
  std::string wrong_flag = codec::encode_count({1, std::nullopt});
  wrong_flag.back() = 2;
  BOOST_TEST(!codec::decode_count(wrong_flag));
  std::string wrong_format = codec::encode_count({1, std::nullopt});
  wrong_format[0] = 2;
  BOOST_TEST(!codec::decode_count(wrong_format));

  BOOST_TEST((codec::owner_in_count_key(codec::count_key(42)) == std::optional<core::user_id>{42}));
  BOOST_TEST(!codec::owner_in_count_key(codec::index_prefix(42)));
  BOOST_TEST(before(codec::count_prefix(), codec::count_key(0)));
  BOOST_TEST(before(codec::count_key(std::numeric_limits<core::user_id>::max()), codec::count_upper_bound()));
  BOOST_TEST((codec::owner_in(codec::index_key(42, 9)) == std::optional<core::user_id>{42}));
  BOOST_TEST((codec::owner_in(codec::use_key(43, 9)) == std::optional<core::user_id>{43}));
  BOOST_TEST(!codec::owner_in(codec::count_key(42)));
}
