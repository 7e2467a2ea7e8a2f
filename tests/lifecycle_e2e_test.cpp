// End-to-end tests of a key's life on the real `tokend` binary, on RocksDB and on PostgreSQL:
// operator keys acting for other users (and admin keys that cannot), expiry at its second on every
// instance, last use in lists, rolling with an overlap, removal after the retention, and data left
// by the previous version. Every wait polls under a deadline.
#define BOOST_TEST_MODULE lifecycle_e2e_test
#include <boost/test/unit_test.hpp>

#include "support/http_client.hpp"
#include "support/postgres.hpp"
#include "support/timing.hpp"
#include "support/tokend_server.hpp"
#include "support/v1_fixtures.hpp"

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace http = boost::beast::http;
using tokend::test::connection;
using tokend::test::eventually;
using tokend::test::keygen;
using tokend::test::reply;
using tokend::test::sandbox;
using tokend::test::tokend_server;

constexpr const char* tokens = "/api/v2/tokens";
std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

reply call(connection& c, http::verb method, const std::string& target, const std::string& key,
           const json::object& body = {}) {
  return c.request(method, target, body.empty() && method == http::verb::get ? "" : json::serialize(body),
                   {{"Authorization", "Bearer " + key}});
}

std::string for_user(std::string path, std::uint64_t user) {
  return path + "?userId=" + std::to_string(user);
}

json::object token_of(const reply& r) { return r.json().as_object().at("token").as_object(); }
std::string key_of(const reply& r) { return std::string(token_of(r).at("token").as_string()); }
std::uint64_t id_of(const json::object& token) { return token.at("id").to_number<std::uint64_t>(); }

std::vector<json::object> listed(connection& c, const std::string& key, const std::string& target = tokens) {
  const reply r = call(c, http::verb::get, target, key);
  BOOST_REQUIRE_MESSAGE(r.status == 200u, r.body);
  std::vector<json::object> out;
  const json::value v = r.json();
  for (const auto& t : v.as_object().at("tokens").as_array()) out.push_back(t.as_object());
  return out;
}

bool accepted(connection& c, const std::string& key) {
  return call(c, http::verb::get, tokens, key).status == 200u;
}

std::optional<std::int64_t> unix_field(const json::object& token, const char* name) {
  const auto& v = token.at(name);
  if (v.is_null()) return std::nullopt;
  return std::stoll(std::string(v.as_string()));
}

std::vector<std::string> operator_env(const std::string& key) {
  return {"TOKEND_BOOTSTRAP_TOKEN=" + key, "TOKEND_BOOTSTRAP_TYPE=operator", "TOKEND_BOOTSTRAP_USER_ID=1"};
}

std::vector<std::string> postgres_env(const std::string& schema, std::vector<std::string> env) {
  env.insert(env.end(), {"TOKEND_STORE=postgres", "TOKEND_POSTGRES_URL=" + tokend::test::postgres_url(),
                         "TOKEND_POSTGRES_SCHEMA=" + schema, "TOKEND_POSTGRES_CONNECTIONS=2",
                         "TOKEND_REVOCATION_POLL=500ms"});
  return env;
}

// Which store a case runs on: the binary's embedded default, or a schema of its own on the test
// PostgreSQL server.
struct rocksdb_store {
  std::vector<std::string> env(std::vector<std::string> base) const { return base; }
};
struct postgres_store {
  std::string schema = tokend::test::fresh_postgres_schema();
  std::vector<std::string> env(std::vector<std::string> base) const {
    return postgres_env(schema, std::move(base));
  }
};

// Waits until `key` is refused and says when that was, in Unix seconds with a fraction.
std::optional<double> refused_at(connection& c, const std::string& key, std::chrono::milliseconds limit) {
  std::optional<double> when;
  eventually(
      [&] {
        if (accepted(c, key)) return false;
        when = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        return true;
      },
      limit);
  return when;
}

// The operator's story on one store: keys for other users, isolation of admin keys, expiry, last
// use, roll and removal after the retention.
template <class Store>
void operator_story(const Store& store) {
  sandbox box;
  const std::string op = keygen(box);
  tokend_server server(
      box, {"--last-used-interval", "1s", "--expired-retention", "2s", "--expired-sweep-interval", "1s"},
      store.env(operator_env(op)));
  connection c(server.api_port());

  // An operator key gives customer 42 an admin key, which cannot reach anyone else.
  json::object create{{"type", "admin"}, {"description", "customer 42"}};
  const reply made = call(c, http::verb::post, for_user(tokens, 42), op, create);
  BOOST_REQUIRE_MESSAGE(made.status == 200u, made.body);
  BOOST_TEST(token_of(made).at("userId").to_number<std::int64_t>() == 42);
  const std::string customer = key_of(made);
  const std::uint64_t customer_id = id_of(token_of(made));
  BOOST_TEST(listed(c, customer).size() == 1u);
  BOOST_TEST(call(c, http::verb::get, for_user(tokens, 1), customer).status == 403u);
  BOOST_TEST(call(c, http::verb::post, for_user(tokens, 1), customer, create).status == 403u);
  BOOST_TEST(
      call(c, http::verb::post, tokens, customer, {{"type", "operator"}, {"description", "x"}}).status ==
      403u);
  const std::uint64_t operator_id = id_of(listed(c, op).at(0));
  // The operator's own token, by id, is "not found" for the customer, like an id that never was.
  const reply theirs = call(c, http::verb::delete_, tokens, customer, {{"id", operator_id}});
  const reply nothing = call(c, http::verb::delete_, tokens, customer, {{"id", operator_id + 1000}});
  BOOST_TEST(theirs.status == 404u);
  BOOST_TEST(theirs.body == nothing.body);
  BOOST_TEST(accepted(c, op));
  // The operator lists and deletes customer 42's tokens.
  BOOST_TEST(listed(c, op, for_user(tokens, 42)).size() == 1u);

  // Expiry: refused from its second on, listed with it; the token is not deleted, it expires.
  create["expiresIn"] = 2;
  const reply expiring = call(c, http::verb::post, for_user(tokens, 42), op, create);
  BOOST_REQUIRE_MESSAGE(expiring.status == 200u, expiring.body);
  const auto expires_at = unix_field(token_of(expiring), "expiresAt");
  BOOST_REQUIRE(expires_at.has_value());
  BOOST_TEST(*expires_at >= unix_now() + 1);
  const std::string short_lived = key_of(expiring);
  BOOST_TEST(accepted(c, short_lived));
  const auto refused = refused_at(c, short_lived, 10s);
  BOOST_REQUIRE_MESSAGE(refused.has_value(), "an expired key is still accepted");
  BOOST_TEST(*refused >= static_cast<double>(*expires_at), "refused before its expiry");
  BOOST_TEST(*refused < static_cast<double>(*expires_at) + 1.5, "refused too long after its expiry");
  BOOST_TEST(call(c, http::verb::get, "/verify", short_lived).status == 401u);

  // Last use: the minute the customer's key was used shows in the list.
  // The minute taken before the use: a use in a later minute only makes lastUsedAt later.
  const std::int64_t minute = unix_now() / 60 * 60;
  BOOST_REQUIRE(accepted(c, customer));
  std::optional<std::int64_t> last_used;
  BOOST_TEST(eventually(
      [&] {
        for (const auto& t : listed(c, op, for_user(tokens, 42))) {
          if (id_of(t) == customer_id) last_used = unix_field(t, "lastUsedAt");
        }
        // An earlier use (the minute before) may be listed first: wait for this one's minute.
        return last_used.value_or(0) >= minute;
      },
      10s));
  BOOST_TEST(last_used.value_or(0) >= minute);
  BOOST_TEST(last_used.value_or(0) % 60 == 0);

  // Roll with a 2 s overlap: both keys work, then only the new one.
  const reply rolled = call(c, http::verb::post, for_user(std::string(tokens) + "/roll", 42), op,
                            {{"id", customer_id}, {"overlap", 2}});
  BOOST_REQUIRE_MESSAGE(rolled.status == 200u, rolled.body);
  const std::string successor = key_of(rolled);
  BOOST_TEST(token_of(rolled).at("description").as_string() == "customer 42");
  BOOST_TEST(accepted(c, successor));
  BOOST_TEST(accepted(c, customer));
  BOOST_TEST(refused_at(c, customer, 10s).has_value());
  BOOST_TEST(accepted(c, successor));

  // Removed after the 2 s retention by the background sweep, without anyone deleting it.
  BOOST_TEST(eventually(
      [&] {
        for (const auto& t : listed(c, op, for_user(tokens, 42))) {
          if (t.at("token").as_string().starts_with(short_lived.substr(0, 6))) return false;
        }
        return true;
      },
      15s));

  // And the operator deletes a customer's key by id.
  const reply deleted =
      call(c, http::verb::delete_, for_user(tokens, 42), op, {{"id", id_of(token_of(rolled))}});
  BOOST_TEST(deleted.status == 200u, deleted.body);
  BOOST_TEST(!accepted(c, successor));
}

// Every key the previous version stored works, lists as never expiring, and can be rolled.
void check_upgraded(tokend_server& server, const std::vector<tokend::test::v1_key>& keys) {
  connection c(server.api_port());
  for (const auto& k : keys) BOOST_TEST(accepted(c, k.key), "lost: " << k.description);
  const auto list = listed(c, keys[0].key);
  BOOST_REQUIRE_EQUAL(list.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    BOOST_TEST(list[i].at("description").as_string() == keys[i].description);
    BOOST_TEST(list[i].at("expiresAt").is_null());
  }
  const reply rolled = call(c, http::verb::post, std::string(tokens) + "/roll", keys[0].key,
                            {{"token", keys[1].key}, {"overlap", 60}});
  BOOST_TEST(rolled.status == 200u, rolled.body);
}

}  // namespace

BOOST_AUTO_TEST_CASE(operator_story_on_rocksdb) { operator_story(rocksdb_store{}); }

BOOST_AUTO_TEST_CASE(rocksdb_data_of_the_previous_version_loads) {
  sandbox box;
  fs::copy(tokend::test::v1_fixtures / "rocksdb-v1", box.data_dir());
  fs::permissions(box.data_dir(), fs::perms::owner_all, fs::perm_options::replace);
  tokend_server server(box, {}, {});
  check_upgraded(server, tokend::test::v1_keys("rocksdb-v1"));
}

BOOST_AUTO_TEST_SUITE(postgres, *boost::unit_test::label("postgres"))

BOOST_AUTO_TEST_CASE(operator_story_on_postgres) { operator_story(postgres_store{}); }

// Two instances on one database: a key with an expiry is refused by both from its second on, with
// no delete and no message between them (B has it cached from before).
BOOST_AUTO_TEST_CASE(a_key_expires_on_every_instance_at_its_time) {
  sandbox box;
  const std::string op = keygen(box);
  const postgres_store store;
  tokend_server a(box, {}, store.env(operator_env(op)));
  tokend_server b(box, {}, store.env(operator_env(op)));
  connection on_a(a.api_port());
  connection on_b(b.api_port());
  const reply made = call(on_a, http::verb::post, for_user(tokens, 9), op,
                          {{"type", "admin"}, {"description", "expires"}, {"expiresIn", 3}});
  BOOST_REQUIRE_MESSAGE(made.status == 200u, made.body);
  const std::string key = key_of(made);
  const auto expires_at = unix_field(token_of(made), "expiresAt");
  BOOST_REQUIRE(expires_at.has_value());
  BOOST_TEST(accepted(on_a, key));
  BOOST_TEST(accepted(on_b, key));  // now in B's cache, with its expiry
  for (auto* c : {&on_a, &on_b}) {
    const auto refused = refused_at(*c, key, 10s);
    BOOST_REQUIRE_MESSAGE(refused.has_value(), "an instance still accepts an expired key");
    BOOST_TEST(*refused >= static_cast<double>(*expires_at));
    BOOST_TEST(*refused < static_cast<double>(*expires_at) + 1.5);
  }
  // Nothing deleted it: it is still listed, expired, on both.
  for (auto* c : {&on_a, &on_b}) BOOST_TEST(listed(*c, op, for_user(tokens, 9)).size() == 1u);
}

BOOST_AUTO_TEST_CASE(postgres_data_of_the_previous_version_loads) {
  std::string error;
  const std::string schema = tokend::test::load_postgres_v1(error);
  BOOST_REQUIRE_MESSAGE(!schema.empty(), "loading the fixture failed: " << error);
  sandbox box;
  tokend_server server(box, {}, postgres_env(schema, {}));
  check_upgraded(server, tokend::test::v1_keys("postgres-v1"));
}

BOOST_AUTO_TEST_SUITE_END()
