// Unit tests for core/expiry_policy: the expiry a new key gets from its request and the policy.
#define BOOST_TEST_MODULE core_expiry_policy_test
#include <boost/test/unit_test.hpp>

#include "core/expiry_policy.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace core = tokend::core;

namespace {

constexpr std::int64_t now = 1'700'000'000;
constexpr std::int64_t day = 86'400;

core::expiry_request at(std::int64_t t) { return {t, std::nullopt}; }
core::expiry_request in(std::int64_t s) { return {std::nullopt, s}; }

bool mentions(const std::string& text, std::string_view word) { return text.find(word) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(no_policy_no_request_never_expires) {
  const auto d = core::decide_expiry({}, {}, now);
  BOOST_TEST(d.ok());
  BOOST_TEST(d.expires_at == 0);
}

BOOST_AUTO_TEST_CASE(expires_at_and_in_are_taken) {
  const auto a = core::decide_expiry({}, at(now + 1), now);
  BOOST_TEST(a.ok());
  BOOST_TEST(a.expires_at == now + 1);
  const auto i = core::decide_expiry({}, in(3600), now);
  BOOST_TEST(i.ok());
  BOOST_TEST(i.expires_at == now + 3600);
}

BOOST_AUTO_TEST_CASE(expires_at_must_be_in_the_future) {
  for (const std::int64_t t : {now, now - 1, std::int64_t{0}, std::int64_t{-5}}) {
    const auto d = core::decide_expiry({}, at(t), now);
    BOOST_TEST(!d.ok(), t);
    BOOST_TEST(mentions(d.problem, "expiresAt"));
    BOOST_TEST(mentions(d.problem, "future"));
  }
}

BOOST_AUTO_TEST_CASE(expires_in_must_be_positive) {
  for (const std::int64_t s : {std::int64_t{0}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::min()}) {
    const auto d = core::decide_expiry({}, in(s), now);
    BOOST_TEST(!d.ok(), s);
    BOOST_TEST(mentions(d.problem, "expiresIn"));
  }
  const auto huge = core::decide_expiry({}, in(std::numeric_limits<std::int64_t>::max()), now);
  BOOST_TEST(!huge.ok());
  BOOST_TEST(mentions(huge.problem, "expiresIn"));
}

BOOST_AUTO_TEST_CASE(both_fields_refused) {
  const auto d = core::decide_expiry({}, {now + 10, 10}, now);
  BOOST_TEST(!d.ok());
  BOOST_TEST(mentions(d.problem, "expiresAt"));
  BOOST_TEST(mentions(d.problem, "expiresIn"));
}

BOOST_AUTO_TEST_CASE(default_lifetime_applies_when_nothing_is_asked) {
  const auto d = core::decide_expiry({day, 0}, {}, now);
  BOOST_TEST(d.ok());
  BOOST_TEST(d.expires_at == now + day);
  // An explicit request wins over the default, longer or shorter.
  BOOST_TEST(core::decide_expiry({day, 0}, in(10), now).expires_at == now + 10);
  BOOST_TEST(core::decide_expiry({day, 0}, in(30 * day), now).expires_at == now + 30 * day);
}

BOOST_AUTO_TEST_CASE(maximum_is_the_default_without_one) {
  const auto d = core::decide_expiry({0, 7 * day}, {}, now);
  BOOST_TEST(d.ok());
  BOOST_TEST(d.expires_at == now + 7 * day);
  BOOST_TEST(core::decide_expiry({day, 7 * day}, {}, now).expires_at == now + day);
}

BOOST_AUTO_TEST_CASE(beyond_the_maximum_refused_naming_it) {
  const core::expiry_policy policy{0, 7 * day};
  BOOST_TEST(core::decide_expiry(policy, in(7 * day), now).expires_at == now + 7 * day);
  BOOST_TEST(core::decide_expiry(policy, at(now + 7 * day), now).expires_at == now + 7 * day);
  for (const auto& request : {in(7 * day + 1), at(now + 7 * day + 1), in(std::int64_t{1} << 40)}) {
    const auto d = core::decide_expiry(policy, request, now);
    BOOST_TEST(!d.ok());
    BOOST_TEST(d.expires_at == 0);
    BOOST_TEST(mentions(d.problem, "maximum"));
    BOOST_TEST(mentions(d.problem, std::to_string(7 * day)));
  }
}
