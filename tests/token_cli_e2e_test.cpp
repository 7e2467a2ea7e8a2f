// End-to-end tests of `tokend token ...` on the real binary: each case starts `tokend serve` on
// 127.0.0.1:0 with an operator bootstrap key and runs the CLI as a child process against it, the
// key given through TOKEND_KEY_FILE or TOKEND_KEY. Every process's output (the server's log
// included) is searched for the operator's key at the end of each case.
#define BOOST_TEST_MODULE token_cli_e2e_test
#include <boost/test/unit_test.hpp>

#include "support/http_client.hpp"
#include "support/keys.hpp"
#include "support/process.hpp"
#include "support/tokend_server.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using tokend::test::finished;
using tokend::test::keygen;
using tokend::test::masked;
using tokend::test::run_tokend_to_end;
using tokend::test::sandbox;
using tokend::test::tokend_server;

constexpr const char* operator_user = "5";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A server whose bootstrap key is an operator key of user 5, and the CLI pointed at it.
struct fixture {
  sandbox box;
  std::string key = keygen(box);
  fs::path key_file = write_key_file();
  tokend_server server;

  // `args`: more flags of the server.
  explicit fixture(std::vector<std::string> args = {})
      : server(box, std::move(args),
               {"TOKEND_BOOTSTRAP_TOKEN=" + key, "TOKEND_BOOTSTRAP_USER_ID=" + std::string(operator_user),
                "TOKEND_BOOTSTRAP_TYPE=operator"}) {}
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  ~fixture() {
    // Whatever happened in the case, the operator's key never reached an output.
    BOOST_TEST(!contains(box.all_output(), key), "the operator key appears in a process's output");
  }

  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(server.api_port()); }

  // `tokend token ARGS` with the key from TOKEND_KEY_FILE.
  finished cli(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    env.push_back("TOKEND_KEY_FILE=" + key_file.string());
    return cli_with(args, std::move(env));
  }

  // `tokend token ARGS` with exactly the variables `env` (and TOKEND_URL).
  finished cli_with(const std::vector<std::string>& args, std::vector<std::string> env) {
    env.push_back("TOKEND_URL=" + url());
    std::vector<std::string> argv{"token"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_tokend_to_end(box, "cli", argv, env);
  }

 private:
  fs::path write_key_file() {
    const fs::path path = box.root() / "operator-key";
    std::ofstream out(path);
    out << key << "\n";
    return path;
  }
};

std::string describe(const finished& r) {
  return r.status.describe() + "; stdout: " + r.out + "; stderr: " + r.err;
}

json::object parsed(const finished& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.out, ec);
  if (ec || !v.is_object()) BOOST_FAIL("not a JSON object: " << r.out);
  return std::move(v.as_object());
}

// The new key and id of a `create --output json` or `roll --output json`.
struct made {
  std::string key;
  std::int64_t id = 0;
  std::int64_t user = 0;
};
made made_of(const finished& r) {
  const auto answer = parsed(r);
  const auto& token = answer.at("token").as_object();
  made m;
  m.key = std::string(token.at("token").as_string());
  m.user = token.at("userId").to_number<std::int64_t>();
  if (const auto* id = token.if_contains("id")) m.id = id->to_number<std::int64_t>();
  return m;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// What today's server already supports: the caller's own user, keys from both sources, errors.

BOOST_AUTO_TEST_CASE(help_without_a_server) {
  sandbox box;
  const auto top = run_tokend_to_end(box, "help", {"--help"});
  BOOST_TEST(top.status.success());
  BOOST_TEST(contains(top.out, "tokend token create|list|delete|roll"));
  const auto token = run_tokend_to_end(box, "help", {"token", "--help"});
  BOOST_TEST(token.status.success(), describe(token));
  BOOST_TEST(contains(token.out, "there is no --key flag"));
  BOOST_TEST(contains(token.out, "TOKEND_KEY_FILE"));
  for (const std::string cmd : {"create", "list", "delete", "roll", "limit", "limited"}) {
    const auto sub = run_tokend_to_end(box, "help", {"token", cmd, "--help"});
    BOOST_TEST(sub.status.success(), cmd << ": " << describe(sub));
    BOOST_TEST(contains(sub.out, "tokend token " + cmd), cmd);
  }
}

BOOST_AUTO_TEST_CASE(create_and_list_for_the_own_user) {
  fixture f;
  const auto table = f.cli({"create", "--description", "made by the CLI"});
  BOOST_TEST_REQUIRE(table.status.success(), describe(table));
  BOOST_TEST(table.err.empty());
  BOOST_TEST(contains(table.out, "ID  USER  TYPE"));
  BOOST_TEST(contains(table.out, "made by the CLI"));
  const std::string marker = "Key (shown once, keep it now): ";
  const auto at = table.out.find(marker);
  BOOST_TEST_REQUIRE(at != std::string::npos);
  const std::string table_key = table.out.substr(at + marker.size(), tokend::core::key_hex_length);
  BOOST_TEST(tokend::core::is_well_formed_key(table_key));

  // JSON, chosen by the variable this time: the server's own answer.
  const auto as_json = f.cli({"create", "--description", "second"}, {"TOKEND_OUTPUT=json"});
  BOOST_TEST_REQUIRE(as_json.status.success(), describe(as_json));
  const made second = made_of(as_json);
  BOOST_TEST(parsed(as_json).at("message").as_string() == "Token created successfully");
  BOOST_TEST(second.user == 5);
  BOOST_TEST(tokend::core::is_well_formed_key(second.key));

  // The new keys work, given through TOKEND_KEY, and list every key of the user, masked.
  const auto list = f.cli_with({"list"}, {"TOKEND_KEY=" + table_key});
  BOOST_TEST_REQUIRE(list.status.success(), describe(list));
  BOOST_TEST(contains(list.out, "LAST USED"));
  BOOST_TEST(contains(list.out, masked(f.key)));
  BOOST_TEST(contains(list.out, masked(table_key)));
  BOOST_TEST(contains(list.out, masked(second.key)));
  BOOST_TEST(!contains(list.out, table_key));
  BOOST_TEST(count_of(list.out, "\n") == 4U);  // the header and three keys

  const auto list_json = f.cli_with({"list", "--output", "json"}, {"TOKEND_KEY=" + second.key});
  BOOST_TEST_REQUIRE(list_json.status.success(), describe(list_json));
  BOOST_TEST(parsed(list_json).at("tokens").as_array().size() == 3U);
}

BOOST_AUTO_TEST_CASE(list_walks_every_page) {
  // Without fsync the 1000 creates of a second page take a moment, not minutes.
  fixture f({"--no-sync"});
  constexpr int bulk = 1000;
  {
    tokend::test::connection c(f.server.api_port());
    const std::vector<std::pair<std::string, std::string>> bearer{{"Authorization", "Bearer " + f.key}};
    for (int i = 0; i < bulk; ++i) {
      const std::string body = R"({"type":"admin","description":"bulk )" + std::to_string(i) + R"("})";
      BOOST_TEST_REQUIRE(c.request(boost::beast::http::verb::post, "/api/v2/tokens", body, bearer).status ==
                         200U);
    }
  }
  const auto list = f.cli({"list", "--output", "json"});
  BOOST_TEST_REQUIRE(list.status.success(), describe(list));
  const json::object all = parsed(list);
  const auto& tokens = all.at("tokens").as_array();
  BOOST_TEST(tokens.size() == static_cast<std::size_t>(bulk + 1));
  // Oldest first across both pages: the bootstrap key, then bulk 0 to bulk 999.
  BOOST_TEST(tokens.back().as_object().at("description").as_string() == "bulk 999");
  const auto table = f.cli({"list"});
  BOOST_TEST_REQUIRE(table.status.success(), describe(table));
  BOOST_TEST(count_of(table.out, "\n") == static_cast<std::size_t>(bulk + 2));  // with the header
}

BOOST_AUTO_TEST_CASE(key_problems_are_usage_errors_or_the_servers_refusal) {
  fixture f;
  // No key at all: a usage error naming both ways to give one.
  const auto none = f.cli_with({"list"}, {});
  BOOST_TEST(none.status.exited);
  BOOST_TEST(none.status.code == 2, describe(none));
  BOOST_TEST(contains(none.err, "--key-file"));
  BOOST_TEST(contains(none.err, "TOKEND_KEY"));
  BOOST_TEST(none.out.empty());

  // A key on the command line is refused before anything is sent.
  const auto on_argv = f.cli({"list", "--key", f.key});
  BOOST_TEST(on_argv.status.code == 2, describe(on_argv));
  BOOST_TEST(contains(on_argv.err, "there is no --key flag"));

  // A missing key file, and a file that holds no key.
  const auto missing = f.cli_with({"list"}, {"TOKEND_KEY_FILE=" + (f.box.root() / "absent").string()});
  BOOST_TEST(missing.status.code == 2, describe(missing));
  const auto garbage = f.cli_with({"list"}, {"TOKEND_KEY=not-a-key"});
  BOOST_TEST(garbage.status.code == 2, describe(garbage));
  BOOST_TEST(contains(garbage.err, "not a well-formed key"));

  // A well-formed key the server does not know: exit 1 with the server's status and message.
  const auto unknown = f.cli_with({"list"}, {"TOKEND_KEY=" + keygen(f.box)});
  BOOST_TEST(unknown.status.code == 1, describe(unknown));
  BOOST_TEST(unknown.err == "tokend token: HTTP 401: Unauthorized Request\n");
  BOOST_TEST(unknown.out.empty());

  // A usage mistake, and a server that is not there.
  BOOST_TEST(f.cli({"delete"}).status.code == 2);
  BOOST_TEST(f.cli({"list", "--url", "https://127.0.0.1:1"}).status.code == 2);
  const auto away = f.cli({"list", "--url", "http://127.0.0.1:1"});
  BOOST_TEST(away.status.code == 1, describe(away));
  BOOST_TEST(contains(away.err, "127.0.0.1:1"));
}

BOOST_AUTO_TEST_CASE(server_refusals_print_its_message) {
  fixture f;
  const auto bad = f.cli({"create", "--description", std::string(300, 'x')});
  BOOST_TEST(bad.status.code == 1, describe(bad));
  BOOST_TEST(contains(bad.err, "tokend token: HTTP 400: "));
  BOOST_TEST(bad.out.empty());
}

// ---------------------------------------------------------------------------------------------
// What needs the server's side of the design: ids, delete and roll by id, expiry, operator keys.

BOOST_AUTO_TEST_CASE(list_shows_id_and_expiry) {
  fixture f;
  const auto created =
      f.cli({"create", "--description", "expiring", "--expires-in", "1h", "--output", "json"});
  BOOST_TEST_REQUIRE(created.status.success(), describe(created));
  const made m = made_of(created);
  BOOST_TEST_REQUIRE(m.id >= 1);
  const json::object answer = parsed(created);
  const auto& token = answer.at("token").as_object();
  BOOST_TEST_REQUIRE(token.contains("expiresAt"));
  BOOST_TEST(token.at("expiresAt").is_string());
  BOOST_TEST(token.at("lastUsedAt").is_null());

  const auto list = f.cli({"list"});
  BOOST_TEST_REQUIRE(list.status.success(), describe(list));
  std::istringstream lines(list.out);
  bool found = false;
  for (std::string line; std::getline(lines, line);) {
    if (!contains(line, "expiring")) continue;
    found = true;
    BOOST_TEST(line.starts_with(std::to_string(m.id) + " "), line);
    // CREATED and EXPIRES both as UTC ISO times.
    BOOST_TEST(count_of(line, "Z  ") >= 2U, line);
  }
  BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(delete_by_id) {
  fixture f;
  const made m = made_of(f.cli({"create", "--description", "to delete", "--output", "json"}));
  BOOST_TEST_REQUIRE(m.id >= 1);
  const auto del = f.cli({"delete", "--id", std::to_string(m.id)});
  BOOST_TEST_REQUIRE(del.status.success(), describe(del));
  BOOST_TEST(del.out == "Token deleted successfully\n");
  const auto refused = f.cli_with({"list"}, {"TOKEND_KEY=" + m.key});
  BOOST_TEST(refused.status.code == 1, describe(refused));
  const auto list = f.cli({"list"});
  BOOST_TEST(!contains(list.out, "to delete"));
  // A second delete of the same id: the server's 404.
  const auto again = f.cli({"delete", "--id", std::to_string(m.id)});
  BOOST_TEST(again.status.code == 1, describe(again));
  BOOST_TEST(contains(again.err, "HTTP 404: "));
}

BOOST_AUTO_TEST_CASE(roll_by_id) {
  fixture f;
  const made old = made_of(f.cli({"create", "--description", "rolled", "--output", "json"}));
  BOOST_TEST_REQUIRE(old.id >= 1);
  const auto rolled = f.cli({"roll", "--id", std::to_string(old.id), "--output", "json"});
  BOOST_TEST_REQUIRE(rolled.status.success(), describe(rolled));
  const made fresh = made_of(rolled);
  BOOST_TEST(fresh.key != old.key);
  BOOST_TEST(fresh.id != old.id);
  BOOST_TEST(parsed(rolled).at("previous").as_object().at("id").to_number<std::int64_t>() == old.id);
  // No overlap: the old key is refused at once, the new one works and carries the description.
  BOOST_TEST(f.cli_with({"list"}, {"TOKEND_KEY=" + old.key}).status.code == 1);
  const auto list = f.cli_with({"list"}, {"TOKEND_KEY=" + fresh.key});
  BOOST_TEST_REQUIRE(list.status.success(), describe(list));
  BOOST_TEST(contains(list.out, masked(fresh.key)));
  BOOST_TEST(contains(list.out, "rolled"));

  // With an overlap, in a table: the new key once, and when the previous one ends.
  const auto table = f.cli({"roll", "--id", std::to_string(fresh.id), "--overlap", "1h"});
  BOOST_TEST_REQUIRE(table.status.success(), describe(table));
  BOOST_TEST(contains(table.out, "Key (shown once, keep it now): "));
  BOOST_TEST(contains(table.out, "Previous key " + std::to_string(fresh.id) + " expires 20"));
  BOOST_TEST(f.cli_with({"list"}, {"TOKEND_KEY=" + fresh.key}).status.success());
}

BOOST_AUTO_TEST_CASE(operator_acts_for_another_user) {
  fixture f;
  const auto created =
      f.cli({"create", "--user-id", "42", "--description", "customer 42", "--output", "json"});
  BOOST_TEST_REQUIRE(created.status.success(), describe(created));
  const made customer = made_of(created);
  BOOST_TEST_REQUIRE(customer.user == 42);

  const auto list = f.cli({"list", "--user-id", "42"});
  BOOST_TEST_REQUIRE(list.status.success(), describe(list));
  BOOST_TEST(contains(list.out, masked(customer.key)));
  BOOST_TEST(contains(list.out, "customer 42"));
  BOOST_TEST(!contains(list.out, masked(f.key)));

  // The customer's own admin key may not reach back to the operator's user.
  const auto back = f.cli_with({"list", "--user-id", operator_user}, {"TOKEND_KEY=" + customer.key});
  BOOST_TEST(back.status.code == 1, describe(back));
  BOOST_TEST(back.err == "tokend token: HTTP 403: Only an operator key may act for another user\n");
  const auto escalate =
      f.cli_with({"create", "--type", "operator", "--description", "x"}, {"TOKEND_KEY=" + customer.key});
  BOOST_TEST(escalate.status.code == 1, describe(escalate));
  BOOST_TEST(escalate.err == "tokend token: HTTP 403: Only an operator key may create an operator key\n");

  const auto rolled =
      f.cli({"roll", "--user-id", "42", "--id", std::to_string(customer.id), "--output", "json"});
  BOOST_TEST_REQUIRE(rolled.status.success(), describe(rolled));
  const made next = made_of(rolled);
  BOOST_TEST(next.user == 42);
  const auto del = f.cli({"delete", "--user-id", "42", "--id", std::to_string(next.id)});
  BOOST_TEST(del.status.success(), describe(del));
  BOOST_TEST(f.cli_with({"list"}, {"TOKEND_KEY=" + next.key}).status.code == 1);
}

// ---------------------------------------------------------------------------------------------
// Rate limits: a key's own limit at create, shown by list, changed by `limit`, and the
// operator's view of the most refused keys.

BOOST_AUTO_TEST_CASE(rate_limits_set_shown_changed_and_watched) {
  fixture f;
  const auto created = f.cli({"create", "--user-id", "42", "--description", "partner", "--rate-limit",
                              "1/1d:2", "--output", "json"});
  BOOST_TEST_REQUIRE(created.status.success(), describe(created));
  const made partner = made_of(created);
  const auto& limit = parsed(created).at("token").as_object().at("rateLimit");
  BOOST_TEST(json::serialize(limit) == R"({"limit":1,"window":86400,"burst":2})");

  auto list = f.cli({"list", "--user-id", "42"});
  BOOST_TEST_REQUIRE(list.status.success(), describe(list));
  BOOST_TEST(contains(list.out, "RATE LIMIT"));
  BOOST_TEST(contains(list.out, "1/1d burst 2"));

  // Two requests fit the burst; the third is refused, with the server's message.
  for (int i = 0; i < 2; ++i) {
    const auto ok = f.cli_with({"list"}, {"TOKEND_KEY=" + partner.key});
    BOOST_TEST(ok.status.success(), describe(ok));
  }
  const auto refused = f.cli_with({"list"}, {"TOKEND_KEY=" + partner.key});
  BOOST_TEST(refused.status.code == 1, describe(refused));
  BOOST_TEST(refused.err == "tokend token: HTTP 429: Rate limit exceeded\n");

  // The operator sees it among the most refused keys, masked.
  const auto limited = f.cli({"limited", "-n", "5"});
  BOOST_TEST_REQUIRE(limited.status.success(), describe(limited));
  BOOST_TEST(contains(limited.out, "USER  ID  PREFIX"));
  BOOST_TEST(contains(limited.out, masked(partner.key)));
  BOOST_TEST(!contains(limited.out, partner.key));
  // Only an operator key may look.
  const auto peek = f.cli_with({"limited"}, {"TOKEND_KEY=" + partner.key});
  BOOST_TEST(peek.status.code == 1, describe(peek));

  // A new limit applies at once; --default hands the key back to the server's default (none).
  const std::string id = std::to_string(partner.id);
  const auto raised = f.cli({"limit", "--user-id", "42", id, "--rate-limit", "1000/1s"});
  BOOST_TEST_REQUIRE(raised.status.success(), describe(raised));
  BOOST_TEST(raised.out == "Rate limit of key " + id + ": 1000/1s\n");
  BOOST_TEST(f.cli_with({"list"}, {"TOKEND_KEY=" + partner.key}).status.success());
  const auto back = f.cli({"limit", "--user-id", "42", "--id", id, "--default"});
  BOOST_TEST_REQUIRE(back.status.success(), describe(back));
  BOOST_TEST(back.out == "Rate limit of key " + id + ": default\n");
  list = f.cli({"list", "--user-id", "42"});
  BOOST_TEST(contains(list.out, "default"));

  // By the key itself, from a file; an admin key may not change a limit.
  const fs::path target = f.box.root() / "partner-key";
  {
    std::ofstream out(target);
    out << partner.key << "\n";
  }
  const auto by_key = f.cli(
      {"limit", "--user-id", "42", "--token-file", target.string(), "--rate-limit", "0", "--output", "json"});
  BOOST_TEST_REQUIRE(by_key.status.success(), describe(by_key));
  BOOST_TEST(parsed(by_key).at("rateLimit").at("limit").to_number<std::int64_t>() == 0);
  BOOST_TEST(!contains(by_key.out, partner.key));
  const auto refused_admin = f.cli_with({"limit", id, "--default"}, {"TOKEND_KEY=" + partner.key});
  BOOST_TEST(refused_admin.status.code == 1, describe(refused_admin));
  BOOST_TEST(refused_admin.err == "tokend token: HTTP 403: Only an operator key may change a rate limit\n");

  // A usage mistake is exit status 2 with its reason, before any request.
  const auto bad = f.cli({"limit", id, "--rate-limit", "100/1w"});
  BOOST_TEST(bad.status.code == 2, describe(bad));
  BOOST_TEST(contains(bad.err, "the window"));
}
