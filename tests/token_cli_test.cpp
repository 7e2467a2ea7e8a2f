// Unit tests of `tokend token`'s pure parts: arguments and variables, durations, the key's sources,
// the server URL, the requests' shapes, JSON answers to table rows and the table itself, and the
// subcommands driven through a substitute transport (no sockets).
#define BOOST_TEST_MODULE token_cli_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "server/cli_http.hpp"
#include "server/cli_table.hpp"
#include "server/token_cli.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace cli = tokend::server::cli;
namespace json = boost::json;
using cli::command;
using cli::usage_error;

cli::env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

cli::options parse(const std::vector<std::string>& args, std::map<std::string, std::string> vars = {}) {
  return cli::parse_args(args, env_of(std::move(vars)));
}

// The usage error's message for `args`, or "" when they parse.
std::string usage_message(const std::vector<std::string>& args,
                          std::map<std::string, std::string> vars = {}) {
  try {
    (void)parse(args, std::move(vars));
  } catch (const usage_error& e) {
    return e.what();
  }
  return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

json::object object_of(std::string_view text) { return json::parse(text).as_object(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(arguments)

BOOST_AUTO_TEST_CASE(create_with_every_flag) {
  const auto o = parse({"create", "--user-id", "42", "--description=Main app", "--type", "operator",
                        "--expires-in", "30d", "--url", "http://10.0.0.5:9000/tokend", "--output", "json"});
  BOOST_TEST((o.cmd == command::create));
  BOOST_TEST(*o.user_id == 42U);
  BOOST_TEST(*o.description == "Main app");
  BOOST_TEST(o.type == "operator");
  BOOST_TEST(*o.expires_in == 30 * 86'400);
  BOOST_TEST(!o.expires_at);
  BOOST_TEST(o.url.host == "10.0.0.5");
  BOOST_TEST(o.url.port == 9000);
  BOOST_TEST(o.url.prefix == "/tokend");
  BOOST_TEST((o.output == cli::output_format::json));
}

BOOST_AUTO_TEST_CASE(defaults) {
  const auto o = parse({"list"});
  BOOST_TEST(o.url.host == "127.0.0.1");
  BOOST_TEST(o.url.port == 8080);
  BOOST_TEST(o.url.prefix.empty());
  BOOST_TEST((o.output == cli::output_format::table));
  BOOST_TEST(!o.user_id);
  BOOST_TEST(o.key_file.empty());
  BOOST_TEST(parse({"create", "--description", "d"}).type == "admin");
}

BOOST_AUTO_TEST_CASE(flags_win_over_variables) {
  const std::map<std::string, std::string> vars = {
      {"TOKEND_URL", "http://example.test:81"}, {"TOKEND_OUTPUT", "json"}, {"TOKEND_KEY_FILE", "/env/key"}};
  const auto from_env = parse({"list"}, vars);
  BOOST_TEST(from_env.url.host == "example.test");
  BOOST_TEST(from_env.url.port == 81);
  BOOST_TEST((from_env.output == cli::output_format::json));
  BOOST_TEST(from_env.key_file == "/env/key");
  const auto from_flags =
      parse({"list", "--url", "http://[::1]:82", "--output", "table", "--key-file", "/flag/key"}, vars);
  BOOST_TEST(from_flags.url.host == "::1");
  BOOST_TEST(from_flags.url.port == 82);
  BOOST_TEST((from_flags.output == cli::output_format::table));
  BOOST_TEST(from_flags.key_file == "/flag/key");
  // An empty variable counts as unset.
  BOOST_TEST(parse({"list"}, {{"TOKEND_URL", ""}}).url.port == 8080);
}

BOOST_AUTO_TEST_CASE(common_flags_anywhere) {
  const auto o = parse({"--output", "json", "delete", "--id", "7", "--user-id", "3"});
  BOOST_TEST((o.cmd == command::remove));
  BOOST_TEST(*o.id == 7U);
  BOOST_TEST(*o.user_id == 3U);
  BOOST_TEST((o.output == cli::output_format::json));
}

BOOST_AUTO_TEST_CASE(help_needs_nothing_else) {
  BOOST_TEST(parse({"--help"}).help);
  const auto o = parse({"roll", "-h"});
  BOOST_TEST(o.help);
  BOOST_TEST((o.cmd == command::roll));
  BOOST_TEST(contains(cli::help_text(command::roll), "--overlap"));
  BOOST_TEST(contains(cli::help_text(command::none), "tokend token list"));
}

BOOST_AUTO_TEST_CASE(there_is_no_key_flag) {
  const std::string key = tokend::core::generate_key();
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"list", "--key", key}, {"list", "--key=" + key}}) {
    const std::string m = usage_message(args);
    BOOST_TEST(contains(m, "there is no --key flag"));
    BOOST_TEST(contains(m, "--key-file"));
    BOOST_TEST(contains(m, "TOKEND_KEY"));
    BOOST_TEST(!contains(m, key));
  }
  BOOST_TEST(contains(cli::help_text(command::none), "there is no --key flag"));
}

BOOST_AUTO_TEST_CASE(a_long_argument_is_never_repeated) {
  const std::string key = tokend::core::generate_key();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {key}, {"list", key}, {"create", "--description", "d", "--expires-in", key}, {"--" + key}}) {
    const std::string m = usage_message(args);
    BOOST_TEST(!m.empty());
    BOOST_TEST(!contains(m, key));
  }
}

BOOST_AUTO_TEST_CASE(mistakes) {
  BOOST_TEST(contains(usage_message({}), "missing command"));
  BOOST_TEST(contains(usage_message({"lsit"}), "unknown command 'lsit'"));
  BOOST_TEST(contains(usage_message({"list", "extra"}), "unexpected argument"));
  BOOST_TEST(contains(usage_message({"list", "--frobnicate"}), "unknown flag '--frobnicate'"));
  BOOST_TEST(contains(usage_message({"list", "--user-id"}), "--user-id needs a value"));
  BOOST_TEST(contains(usage_message({"list", "--user-id", "1", "--user-id", "2"}), "more than once"));
  BOOST_TEST(contains(usage_message({"list", "--overlap", "5s"}), "--overlap is not a flag of list"));
  BOOST_TEST(contains(usage_message({"delete", "--description", "x", "--id", "1"}), "not a flag of delete"));
  BOOST_TEST(contains(usage_message({"create"}), "--description"));
  BOOST_TEST(contains(usage_message({"delete"}), "--id"));
  BOOST_TEST(contains(usage_message({"roll", "--overlap", "1m"}), "--id"));
  BOOST_TEST(
      contains(usage_message({"create", "--description", "d", "--type", "root"}), "admin or operator"));
  BOOST_TEST(contains(
      usage_message({"create", "--description", "d", "--expires-in", "1h", "--expires-at", "2000000000"}),
      "not both"));
  BOOST_TEST(contains(usage_message({"list", "--output", "yaml"}), "table or json"));
  BOOST_TEST(contains(usage_message({"list"}, {{"TOKEND_OUTPUT", "xml"}}), "TOKEND_OUTPUT"));
  for (const char* bad : {"0", "-1", "x", "1.5", "9007199254740993", ""}) {
    BOOST_TEST(contains(usage_message({"list", "--user-id", bad}), "--user-id"), bad);
    BOOST_TEST(contains(usage_message({"delete", "--id", bad}), "--id"), bad);
  }
  BOOST_TEST(*parse({"list", "--user-id", "9007199254740992"}).user_id == 9007199254740992ULL);
}

BOOST_AUTO_TEST_CASE(rate_limit_flags) {
  auto o = parse({"create", "--description", "d", "--rate-limit", "100/1s:200"});
  BOOST_TEST(o.rate_limit->limit == 100U);
  BOOST_TEST(o.rate_limit->window_seconds == 1U);
  BOOST_TEST(o.rate_limit->burst == 200U);
  BOOST_TEST(!o.default_limit);
  o = parse({"roll", "--id", "4", "--default"});
  BOOST_TEST(o.default_limit);
  BOOST_TEST(!o.rate_limit);
  // limit: the key by positional ID, --id or --token-file; a limit or --default.
  o = parse({"limit", "7", "--rate-limit", "6000/1m"});
  BOOST_TEST((o.cmd == command::limit));
  BOOST_TEST(*o.id == 7U);
  BOOST_TEST(o.rate_limit->window_seconds == 60U);
  o = parse({"limit", "--id", "8", "--default", "--user-id", "42"});
  BOOST_TEST(*o.id == 8U);
  BOOST_TEST(o.default_limit);
  o = parse({"limit", "--token-file", "/k", "--rate-limit", "0"});
  BOOST_TEST(!o.id);
  BOOST_TEST(o.token_file == "/k");
  BOOST_TEST(o.rate_limit->unlimited());
  o = parse({"limited", "-n", "5"});
  BOOST_TEST((o.cmd == command::limited));
  BOOST_TEST(*o.count == 5U);
  BOOST_TEST(!parse({"limited"}).count);

  BOOST_TEST(contains(usage_message({"limit", "7"}), "--rate-limit"));
  BOOST_TEST(contains(usage_message({"limit", "--default"}), "--token-file"));
  BOOST_TEST(contains(usage_message({"limit", "7", "--id", "7", "--default"}), "ID once"));
  BOOST_TEST(contains(usage_message({"limit", "7", "--token-file", "/k", "--default"}), "--token-file"));
  BOOST_TEST(contains(usage_message({"limit", "7", "8", "--default"}), "unexpected argument '8'"));
  BOOST_TEST(contains(usage_message({"limit", "x", "--default"}), "invalid value for ID"));
  BOOST_TEST(contains(usage_message({"limit", "7", "--default", "--rate-limit", "1/1s"}), "not both"));
  BOOST_TEST(contains(usage_message({"roll", "--id", "1", "--default", "--rate-limit", "1/1s"}), "not both"));
  BOOST_TEST(contains(usage_message({"limit", "7", "--default=yes"}), "--default takes no value"));
  BOOST_TEST(contains(usage_message({"create", "--description", "d", "--default"}), "not a flag of create"));
  BOOST_TEST(contains(usage_message({"list", "--rate-limit", "1/1s"}), "not a flag of list"));
  BOOST_TEST(contains(usage_message({"limited", "--user-id", "3"}), "not a flag of limited"));
  BOOST_TEST(contains(usage_message({"limited", "-n", "101"}), "from 1 to 100"));
  BOOST_TEST(contains(usage_message({"limited", "-n", "0"}), "-n"));
  BOOST_TEST(contains(usage_message({"limited", "7"}), "unexpected argument"));
}

BOOST_AUTO_TEST_CASE(quota_flags_and_requests) {
  auto o = parse({"quota"});
  BOOST_TEST((o.cmd == command::quota));
  auto p = cli::plan_request(o);
  BOOST_TEST(p.method == "GET");
  BOOST_TEST(p.target == "/api/v2/tokens/quota");
  BOOST_TEST(p.body.empty());
  // --user is --user-id.
  BOOST_TEST(cli::plan_request(parse({"quota", "--user", "3"})).target == "/api/v2/tokens/quota?userId=3");
  BOOST_TEST(cli::plan_request(parse({"quota", "--user-id", "3"})).target == "/api/v2/tokens/quota?userId=3");
  p = cli::plan_request(parse({"quota", "--user", "3", "--max-tokens", "50000", "--url", "http://h:1/pre"}));
  BOOST_TEST(p.method == "PUT");
  BOOST_TEST(p.target == "/pre/api/v2/tokens/quota");
  BOOST_TEST(p.body == R"({"userId":3,"maxTokens":50000})");
  p = cli::plan_request(parse({"quota", "--user=3", "--max-tokens", "0"}));
  BOOST_TEST(p.body == R"({"userId":3,"maxTokens":0})");
  p = cli::plan_request(parse({"quota", "--user", "3", "--default"}));
  BOOST_TEST(p.method == "PUT");
  BOOST_TEST(p.body == R"({"userId":3,"maxTokens":null})");

  BOOST_TEST(contains(usage_message({"quota", "--max-tokens", "5"}), "needs --user"));
  BOOST_TEST(contains(usage_message({"quota", "--default"}), "needs --user"));
  BOOST_TEST(contains(usage_message({"quota", "--user", "3", "--max-tokens", "5", "--default"}), "not both"));
  BOOST_TEST(contains(usage_message({"quota", "--user", "3", "--max-tokens", "1000000001"}), "--max-tokens"));
  BOOST_TEST(contains(usage_message({"quota", "--user", "3", "--max-tokens", "-1"}), "--max-tokens"));
  BOOST_TEST(contains(usage_message({"quota", "--user", "3", "--user-id", "3"}), "more than once"));
  BOOST_TEST(contains(usage_message({"list", "--max-tokens", "5"}), "not a flag of list"));
  BOOST_TEST(contains(usage_message({"quota", "--page", "1"}), "not a flag of quota"));
  BOOST_TEST(contains(usage_message({"list", "--page", "11"}), "from 0 to 10"));
  BOOST_TEST(contains(cli::help_text(command::quota), "--max-tokens"));
  BOOST_TEST(contains(cli::help_text(command::none), "tokend token quota"));
}

BOOST_AUTO_TEST_CASE(rate_limit_syntax) {
  const auto limit = [](std::string_view text) { return cli::parse_rate_limit("--rate-limit", text); };
  BOOST_TEST((limit("100/1s") == tokend::core::rate_limit{100, 1, 0}));
  BOOST_TEST((limit("100/s") == tokend::core::rate_limit{100, 1, 0}));
  BOOST_TEST((limit("6000/1m:200") == tokend::core::rate_limit{6000, 60, 200}));
  BOOST_TEST((limit("5/90") == tokend::core::rate_limit{5, 90, 0}));
  BOOST_TEST((limit("1/1d") == tokend::core::rate_limit{1, 86'400, 0}));
  BOOST_TEST(
      (limit("1000000000/1s:1000000000") == tokend::core::rate_limit{1'000'000'000, 1, 1'000'000'000}));
  BOOST_TEST(limit("0").unlimited());
  const auto message = [&](std::string_view text) {
    try {
      (void)limit(text);
    } catch (const usage_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BOOST_TEST(contains(message("100"), "N/DURATION[:BURST]"));
  BOOST_TEST(contains(message("off"), "N/DURATION[:BURST]"));
  BOOST_TEST(contains(message("0/1s"), "the limit is an integer from 1"));
  BOOST_TEST(contains(message("1000000001/1s"), "the limit"));
  BOOST_TEST(contains(message("-1/1s"), "the limit"));
  BOOST_TEST(contains(message("1.5/1s"), "the limit"));
  BOOST_TEST(contains(message("/1s"), "the limit"));
  BOOST_TEST(contains(message("10/1s:0"), "the burst"));
  BOOST_TEST(contains(message("10/1s:"), "the burst"));
  BOOST_TEST(contains(message("10/1s:1000000001"), "the burst"));
  for (const char* window : {"10/0s", "10/500ms", "10/1500ms", "10/2d", "10/", "10/x", "10/1w", "10/ 1s"}) {
    BOOST_TEST(contains(message(window), "the window"), window);
    BOOST_TEST(contains(message(window), "--rate-limit"), window);
  }
  BOOST_TEST(limit("10/2000ms").window_seconds == 2U);
  // The message never repeats a long argument whole.
  const std::string key = tokend::core::generate_key();
  BOOST_TEST(!contains(message(key), key));
}

BOOST_AUTO_TEST_CASE(urls) {
  for (const char* bad :
       {"https://127.0.0.1", "127.0.0.1:8080", "http://", "http://u:p@host", "http://h/?q=1", "http://h/#f",
        "http://h:0", "http://h:65536", "http://h:x", "ftp://h"}) {
    BOOST_TEST(!cli::parse_server_url(bad).url, bad);
    BOOST_TEST(!cli::parse_server_url(bad).error.empty(), bad);
    BOOST_TEST(contains(usage_message({"list", "--url", bad}), "invalid URL"), bad);
  }
  const auto plain = cli::parse_server_url("http://localhost");
  BOOST_TEST(plain.url->host == "localhost");
  BOOST_TEST(plain.url->port == 80);
  const auto prefixed = cli::parse_server_url("HTTP://127.0.0.1:8080/a/b//");
  BOOST_TEST(prefixed.url->host == "127.0.0.1");
  BOOST_TEST(prefixed.url->prefix == "/a/b");
  BOOST_TEST(cli::authority(*prefixed.url) == "127.0.0.1:8080");
  BOOST_TEST(cli::authority(*cli::parse_server_url("http://[::1]:9/").url) == "[::1]:9");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(durations_as_the_server_takes_them) {
  BOOST_TEST(cli::parse_duration_seconds("--x", "90", 1) == 90);
  BOOST_TEST(cli::parse_duration_seconds("--x", "90s", 1) == 90);
  BOOST_TEST(cli::parse_duration_seconds("--x", "2000ms", 1) == 2);
  BOOST_TEST(cli::parse_duration_seconds("--x", "15m", 1) == 900);
  BOOST_TEST(cli::parse_duration_seconds("--x", "12h", 1) == 43'200);
  BOOST_TEST(cli::parse_duration_seconds("--x", "30d", 1) == 2'592'000);
  BOOST_TEST(cli::parse_duration_seconds("--x", "0", 0) == 0);
  BOOST_TEST(cli::parse_duration_seconds("--x", "0s", 0) == 0);
  for (const char* bad :
       {"", "s", "ms", "-5s", "1.5h", "5w", "1500ms", "10 s", "99999999999999999999", "40000d"}) {
    BOOST_CHECK_THROW((void)cli::parse_duration_seconds("--x", bad, 0), usage_error);
  }
  BOOST_CHECK_THROW((void)cli::parse_duration_seconds("--x", "0", 1), usage_error);
  BOOST_TEST(*parse({"roll", "--id", "3", "--overlap", "0"}).overlap == 0);
  BOOST_TEST(contains(usage_message({"create", "--description", "d", "--expires-in", "0"}), "--expires-in"));
}

BOOST_AUTO_TEST_SUITE(key_sources)

BOOST_AUTO_TEST_CASE(key_file_first_line_trimmed) {
  tokend::test::temp_dir dir;
  const std::string key = tokend::core::generate_key();
  const auto path = (dir.path() / "key").string();
  {
    std::ofstream out(path);
    out << "  " << key << " \r\nsecond line\n";
  }
  cli::options o = parse({"list", "--key-file", path});
  BOOST_TEST(cli::read_key(o, env_of({})) == key);
  // The file wins over TOKEND_KEY.
  BOOST_TEST(cli::read_key(o, env_of({{"TOKEND_KEY", tokend::core::generate_key()}})) == key);
  o = parse({"list"}, {{"TOKEND_KEY_FILE", path}});
  BOOST_TEST(cli::read_key(o, env_of({})) == key);
}

BOOST_AUTO_TEST_CASE(key_from_environment) {
  const std::string key = tokend::core::generate_key();
  BOOST_TEST(cli::read_key(parse({"list"}), env_of({{"TOKEND_KEY", key + "\n"}})) == key);
}

BOOST_AUTO_TEST_CASE(missing_or_bad_key_is_a_usage_error_naming_both_ways) {
  try {
    (void)cli::read_key(parse({"list"}), env_of({{"TOKEND_KEY", ""}}));
    BOOST_FAIL("no usage error");
  } catch (const usage_error& e) {
    BOOST_TEST(contains(e.what(), "--key-file"));
    BOOST_TEST(contains(e.what(), "TOKEND_KEY_FILE"));
    BOOST_TEST(contains(e.what(), "TOKEND_KEY"));
  }
  BOOST_CHECK_THROW((void)cli::read_key(parse({"list", "--key-file", "/nonexistent/key"}), env_of({})),
                    usage_error);
  const std::string bad = std::string(64, 'a');
  try {
    (void)cli::read_key(parse({"list"}), env_of({{"TOKEND_KEY", bad}}));
    BOOST_FAIL("no usage error");
  } catch (const usage_error& e) {
    BOOST_TEST(contains(e.what(), "not a well-formed key"));
    BOOST_TEST(!contains(e.what(), bad));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(requests_follow_the_api) {
  auto p =
      cli::plan_request(parse({"create", "--user-id", "42", "--description", "CI", "--expires-in", "1h"}));
  BOOST_TEST(p.method == "POST");
  BOOST_TEST(p.target == "/api/v2/tokens?userId=42");
  BOOST_TEST(p.body == R"({"type":"admin","description":"CI","expiresIn":3600})");
  p = cli::plan_request(
      parse({"create", "--description", "CI", "--expires-at", "2000000000", "--type", "operator"}));
  BOOST_TEST(p.target == "/api/v2/tokens");
  BOOST_TEST(p.body == R"({"type":"operator","description":"CI","expiresAt":2000000000})");
  p = cli::plan_request(parse({"delete", "--id", "17", "--url", "http://h:1/pre/"}));
  BOOST_TEST(p.method == "DELETE");
  BOOST_TEST(p.target == "/pre/api/v2/tokens");
  BOOST_TEST(p.body == R"({"id":17})");
  p = cli::plan_request(
      parse({"roll", "--id", "17", "--user-id", "5", "--overlap", "1h", "--expires-in", "30d"}));
  BOOST_TEST(p.method == "POST");
  BOOST_TEST(p.target == "/api/v2/tokens/roll?userId=5");
  BOOST_TEST(p.body == R"({"id":17,"overlap":3600,"expiresIn":2592000})");
  p = cli::plan_request(parse({"roll", "--id", "2"}));
  BOOST_TEST(p.body == R"({"id":2})");
  p = cli::list_request(parse({"list"}), "");
  BOOST_TEST(p.method == "GET");
  BOOST_TEST(p.target == "/api/v2/tokens?pageSize=1000");
  BOOST_TEST(p.body.empty());
  BOOST_TEST(cli::list_request(parse({"list", "--user-id", "9"}), "abc-_").target ==
             "/api/v2/tokens?userId=9&pageSize=1000&cursor=abc-_");
  BOOST_TEST(cli::list_page_request(parse({"list", "--user-id", "9"}), 3).target ==
             "/api/v2/tokens?userId=9&page=3&pageSize=1000");
  BOOST_TEST(cli::plan_request(parse({"list", "--page", "2"})).target ==
             "/api/v2/tokens?page=2&pageSize=1000");
}

BOOST_AUTO_TEST_CASE(rate_limit_requests_follow_the_api) {
  auto p = cli::plan_request(parse({"create", "--description", "CI", "--rate-limit", "100/1s:200"}));
  BOOST_TEST(p.body ==
             R"({"type":"admin","description":"CI","rateLimit":{"limit":100,"window":1,"burst":200}})");
  p = cli::plan_request(parse({"create", "--description", "CI", "--rate-limit", "0"}));
  BOOST_TEST(p.body == R"({"type":"admin","description":"CI","rateLimit":{"limit":0}})");
  p = cli::plan_request(parse({"roll", "--id", "3", "--rate-limit", "10/1m"}));
  BOOST_TEST(p.body == R"({"id":3,"rateLimit":{"limit":10,"window":60}})");
  p = cli::plan_request(parse({"roll", "--id", "3", "--default"}));
  BOOST_TEST(p.body == R"({"id":3,"rateLimit":null})");
  p = cli::plan_request(parse({"limit", "7", "--user-id", "42", "--rate-limit", "5/1s"}));
  BOOST_TEST(p.method == "PATCH");
  BOOST_TEST(p.target == "/api/v2/tokens?userId=42");
  BOOST_TEST(p.body == R"({"id":7,"rateLimit":{"limit":5,"window":1}})");
  p = cli::plan_request(parse({"limit", "--id", "7", "--default"}));
  BOOST_TEST(p.target == "/api/v2/tokens");
  BOOST_TEST(p.body == R"({"id":7,"rateLimit":null})");
  p = cli::plan_request(parse({"limited", "--url", "http://h:1/pre"}));
  BOOST_TEST(p.method == "GET");
  BOOST_TEST(p.target == "/pre/api/v2/tokens/limited");
  BOOST_TEST(p.body.empty());
  BOOST_TEST(cli::plan_request(parse({"limited", "-n", "5"})).target == "/api/v2/tokens/limited?n=5");
}

BOOST_AUTO_TEST_CASE(limit_by_key_file) {
  tokend::test::temp_dir dir;
  const std::string target = tokend::core::generate_key();
  const auto path = (dir.path() / "target").string();
  {
    std::ofstream out(path);
    out << target << "\n";
  }
  auto o = parse({"limit", "--token-file", path, "--rate-limit", "1/1s"});
  cli::read_target_key(o);
  BOOST_TEST(o.target_key == target);
  BOOST_TEST(cli::plan_request(o).body ==
             R"({"token":")" + target + R"(","rateLimit":{"limit":1,"window":1}})");
  {
    std::ofstream out(path);
    out << "not a key\n";
  }
  o = parse({"limit", "--token-file", path, "--default"});
  BOOST_CHECK_THROW(cli::read_target_key(o), usage_error);
  o = parse({"limit", "--token-file", "/nonexistent/target", "--default"});
  BOOST_CHECK_THROW(cli::read_target_key(o), usage_error);
}

BOOST_AUTO_TEST_SUITE(table)

BOOST_AUTO_TEST_CASE(iso_times) {
  BOOST_TEST(cli::iso_time(0) == "1970-01-01T00:00:00Z");
  BOOST_TEST(cli::iso_time(1'796'151'600) == "2026-12-01T19:00:00Z");
  BOOST_TEST(cli::iso_time(951'825'599) == "2000-02-29T11:59:59Z");
}

BOOST_AUTO_TEST_CASE(rows_from_tokens_of_today_and_of_the_new_api) {
  const auto old = cli::row_of(object_of(R"({"token":"9fe4f9....","description":"Main app","type":"admin",)"
                                         R"("timestamp":"1796151600","userId":3})"));
  BOOST_TEST(old.id == "-");
  BOOST_TEST(old.user == "3");
  BOOST_TEST(old.type == "admin");
  BOOST_TEST(old.prefix == "9fe4f9....");
  BOOST_TEST(old.created == "2026-12-01T19:00:00Z");
  BOOST_TEST(old.expires == "-");
  BOOST_TEST(old.last_used == "-");
  BOOST_TEST(old.description == "Main app");
  const auto full = cli::row_of(object_of(
      R"({"token":"9fe4f9....","description":"d","type":"operator","timestamp":"1796151600","userId":3,)"
      R"("id":17,"expiresAt":"1796155200","lastUsedAt":null})"));
  BOOST_TEST(full.id == "17");
  BOOST_TEST(full.type == "operator");
  BOOST_TEST(full.expires == "2026-12-01T20:00:00Z");
  BOOST_TEST(full.last_used == "-");
  // A new key (create, roll) shows only its first characters in the table.
  const std::string key = tokend::core::generate_key();
  const auto created = cli::row_of(object_of(R"({"token":")" + key + R"(","userId":1,"timestamp":"0"})"));
  BOOST_TEST(created.prefix == key.substr(0, 6) + "....");
  BOOST_TEST(old.rate_limit == "-");
}

BOOST_AUTO_TEST_CASE(rate_limit_cells) {
  const auto cell = [](std::string_view text) { return cli::rate_limit_cell(object_of(text)); };
  BOOST_TEST(cell(R"({})") == "-");
  BOOST_TEST(cell(R"({"rateLimit":null})") == "default");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":0,"window":1,"burst":0}})") == "none");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":100,"window":1,"burst":100}})") == "100/1s");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":100,"window":1,"burst":200}})") == "100/1s burst 200");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":6000,"window":60,"burst":6000}})") == "6000/1m");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":1,"window":90}})") == "1/90s");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":1,"window":7200}})") == "1/2h");
  BOOST_TEST(cell(R"({"rateLimit":{"limit":1,"window":86400}})") == "1/1d");
  BOOST_TEST(
      cli::row_of(object_of(R"({"userId":1,"rateLimit":{"limit":5,"window":1,"burst":9}})")).rate_limit ==
      "5/1s burst 9");
  for (const char* bad : {R"({"rateLimit":5})", R"({"rateLimit":{}})", R"({"rateLimit":{"limit":"5"}})",
                          R"({"rateLimit":{"limit":-5}})", R"({"rateLimit":{"limit":5,"window":1.5}})"}) {
    BOOST_CHECK_THROW((void)cell(bad), cli::reply_error);
  }
}

BOOST_AUTO_TEST_CASE(limited_keys_table) {
  const auto keys =
      json::parse(
          R"([{"userId":42,"id":7,"token":"9fe4f9....","rateLimit":{"limit":100,"window":1,"burst":200},)"
          R"("refused":12345,"admitted":99},{"userId":3,"id":1,"token":"abcdef....","rateLimit":)"
          R"({"limit":5,"window":60,"burst":5},"refused":1,"admitted":5}])")
          .as_array();
  BOOST_TEST(cli::format_limited_table(keys) ==
             "USER  ID  PREFIX      RATE LIMIT        REFUSED  ADMITTED\n"
             "42    7   9fe4f9....  100/1s burst 200  12345    99\n"
             "3     1   abcdef....  5/1m              1        5\n");
  BOOST_TEST(cli::format_limited_table({}) == "USER  ID  PREFIX  RATE LIMIT  REFUSED  ADMITTED\n");
  BOOST_CHECK_THROW((void)cli::format_limited_table(json::parse("[1]").as_array()), cli::reply_error);
}

BOOST_AUTO_TEST_CASE(malformed_tokens_are_reply_errors) {
  for (const char* bad :
       {R"({"id":"17"})", R"({"userId":"3"})", R"({"timestamp":"x"})", R"({"expiresAt":"-5"})",
        R"({"lastUsedAt":true})", R"({"description":7})", R"({"expiresAt":"99999999999999"})"}) {
    BOOST_CHECK_THROW((void)cli::row_of(object_of(bad)), cli::reply_error);
  }
  BOOST_CHECK_THROW((void)cli::rows_of(json::parse("[1]").as_array()), cli::reply_error);
}

BOOST_AUTO_TEST_CASE(aligned_columns_and_no_control_characters) {
  const std::vector<cli::token_row> rows = {
      {"1", "3", "admin", "9fe4f9....", "2026-12-01T19:00:00Z", "-", "-", "default", "Main app"},
      {"12345", "3", "operator", "abcdef....", "2026-12-01T19:00:00Z", "-", "-", "100/1s burst 200",
       "caf\xc3\xa9\x1b[2J\xc2\x9b"}};
  const std::string t = cli::format_table(rows);
  const std::string expected =
      "ID     USER  TYPE      PREFIX      CREATED               EXPIRES  LAST USED  RATE LIMIT        "
      "DESCRIPTION\n"
      "1      3     admin     9fe4f9....  2026-12-01T19:00:00Z  -        -          default           "
      "Main app\n"
      "12345  3     operator  abcdef....  2026-12-01T19:00:00Z  -        -          100/1s burst 200  "
      "caf\xc3\xa9?[2J?\n";
  BOOST_TEST(t == expected);
  BOOST_TEST(cli::format_table({}) ==
             "ID  USER  TYPE  PREFIX  CREATED  EXPIRES  LAST USED  RATE LIMIT  DESCRIPTION\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(commands)

// Answers each request with the next reply, recording what was asked.
struct fake_server {
  std::vector<cli::http_reply> replies;
  std::vector<cli::http_call> calls;
  std::size_t next = 0;

  cli::transport transport() {
    return [this](const cli::server_url&, const cli::http_call& call) {
      calls.push_back(call);
      if (next == replies.size()) throw cli::transport_error("no more replies");
      return replies.at(next++);
    };
  }
};

struct outcome {
  int status;
  std::string out;
  std::string err;
};

outcome execute(fake_server& server, const std::vector<std::string>& args, const std::string& key) {
  std::ostringstream out;
  std::ostringstream err;
  const int status = cli::execute(parse(args), key, server.transport(), out, err);
  return {status, out.str(), err.str()};
}

std::string token_json(int id) {
  return R"({"token":"aaaaaa....","description":"k)" + std::to_string(id) +
         R"(","type":"admin","timestamp":"1796151600","userId":4,"id":)" + std::to_string(id) +
         R"(,"expiresAt":null,"lastUsedAt":"1796151660"})";
}

BOOST_AUTO_TEST_CASE(list_walks_every_page) {
  fake_server server;
  server.replies = {{200, R"({"success":true,"message":"Success","tokens":[)" + token_json(1) + "," +
                              token_json(2) + R"(],"pageSize":1000,"hasMore":true,"nextCursor":"C1"})"},
                    {200, R"({"success":true,"message":"Success","tokens":[)" + token_json(3) +
                              R"(],"pageSize":1000,"hasMore":false})"}};
  const std::string key = tokend::core::generate_key();
  const auto r = execute(server, {"list", "--user-id", "4"}, key);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.err.empty());
  BOOST_REQUIRE(server.calls.size() == 2U);
  BOOST_TEST(server.calls[0].target == "/api/v2/tokens?userId=4&pageSize=1000");
  BOOST_TEST(server.calls[1].target == "/api/v2/tokens?userId=4&pageSize=1000&cursor=C1");
  BOOST_TEST(server.calls[0].key == key);
  BOOST_TEST(!contains(server.calls[0].target, key));
  BOOST_TEST(contains(r.out, "LAST USED"));
  BOOST_TEST(contains(r.out, "2026-12-01T19:01:00Z"));
  BOOST_TEST(contains(r.out, "k3"));
  BOOST_TEST(!contains(r.out, key));

  fake_server again;
  again.replies = server.replies;
  const auto j = execute(again, {"list", "--output", "json"}, key);
  BOOST_TEST(j.status == 0);
  const auto all = json::parse(j.out).as_object();
  BOOST_TEST(all.at("tokens").as_array().size() == 3U);
  BOOST_TEST(all.at("success").as_bool());
}

// A server without cursors answers hasMore alone: the walk goes on by page, as before.
BOOST_AUTO_TEST_CASE(list_walks_by_page_on_a_server_without_cursors) {
  fake_server server;
  server.replies = {{200, R"({"success":true,"message":"Success","tokens":[)" + token_json(1) +
                              R"(],"page":0,"pageSize":1000,"hasMore":true})"},
                    {200, R"({"success":true,"message":"Success","tokens":[)" + token_json(2) +
                              R"(],"page":1,"pageSize":1000,"hasMore":true})"},
                    {200, R"({"success":true,"message":"Success","tokens":[)" + token_json(3) +
                              R"(],"page":2,"pageSize":1000,"hasMore":false})"}};
  const auto r = execute(server, {"list", "--output", "json"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_REQUIRE(server.calls.size() == 3U);
  BOOST_TEST(server.calls[0].target == "/api/v2/tokens?pageSize=1000");
  BOOST_TEST(server.calls[1].target == "/api/v2/tokens?page=1&pageSize=1000");
  BOOST_TEST(server.calls[2].target == "/api/v2/tokens?page=2&pageSize=1000");
  BOOST_TEST(json::parse(r.out).at("tokens").as_array().size() == 3U);
}

BOOST_AUTO_TEST_CASE(list_page_asks_for_that_page_alone) {
  fake_server server;
  server.replies = {{200, R"({"success":true,"message":"Success","tokens":[)" + token_json(7) +
                              R"(],"page":3,"pageSize":1000,"hasMore":true,"nextCursor":"C"})"}};
  const auto r = execute(server, {"list", "--page", "3"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_REQUIRE(server.calls.size() == 1U);
  BOOST_TEST(server.calls[0].target == "/api/v2/tokens?page=3&pageSize=1000");
  BOOST_TEST(contains(r.out, "k7"));
}

BOOST_AUTO_TEST_CASE(quota_prints_count_and_bound) {
  fake_server server;
  server.replies = {
      {200,
       R"({"success":true,"message":"Success","userId":3,"tokens":120,"maxTokens":10000,"ownBound":false})"},
      {200, R"({"success":true,"message":"Success","userId":3,"tokens":120,"maxTokens":0,"ownBound":true})"},
      {409, R"({"success":false,"message":"Only an operator key may change a token bound"})"}};
  const std::string key = tokend::core::generate_key();
  auto r = execute(server, {"quota", "--user", "3"}, key);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out == "User 3: 120 tokens, bound 10000 (the server's default)\n");
  r = execute(server, {"quota", "--user", "3", "--max-tokens", "0"}, key);
  BOOST_TEST(r.out == "User 3: 120 tokens, bound none (its own)\n");
  BOOST_TEST(server.calls[1].method == "PUT");
  BOOST_TEST(server.calls[1].body == R"({"userId":3,"maxTokens":0})");
  r = execute(server, {"quota", "--user", "3", "--default"}, key);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "Only an operator key may change a token bound"));
}

BOOST_AUTO_TEST_CASE(an_empty_page_with_more_to_come_ends_the_walk) {
  fake_server server;
  server.replies = {{200, R"({"success":true,"message":"Success","tokens":[],"hasMore":true})"},
                    {200, R"({"success":true,"message":"Success","tokens":[],"hasMore":true})"}};
  const auto r = execute(server, {"list"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 1);
  BOOST_TEST(server.calls.size() == 1U);
  BOOST_TEST(contains(r.err, "unexpected answer"));
}

BOOST_AUTO_TEST_CASE(server_errors_print_status_and_message) {
  fake_server server;
  server.replies = {{403, R"({"success":false,"message":"Only an operator key may act for another user"})"}};
  const auto r =
      execute(server, {"create", "--user-id", "9", "--description", "d"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.err == "tokend token: HTTP 403: Only an operator key may act for another user\n");
  BOOST_TEST(cli::error_message(502, "<html>bad gateway</html>") ==
             "HTTP 502 (the answer holds no JSON message)");
  BOOST_TEST(cli::error_message(400, R"({"message":"a\u001bb"})") == "HTTP 400: a?b");

  fake_server down;
  const auto t = execute(down, {"list"}, tokend::core::generate_key());
  BOOST_TEST(t.status == 1);
  BOOST_TEST(contains(t.err, "no more replies"));

  fake_server garbage;
  garbage.replies = {{200, "not json"}};
  BOOST_TEST(execute(garbage, {"delete", "--id", "1"}, tokend::core::generate_key()).status == 1);
}

BOOST_AUTO_TEST_CASE(create_delete_roll_outputs) {
  const std::string new_key = tokend::core::generate_key();
  const std::string created = R"({"success":true,"message":"Token created successfully","token":{"token":")" +
                              new_key +
                              R"(","description":"CI","type":"admin","timestamp":"1796151600","userId":42,)"
                              R"("id":18,"expiresAt":"1798743600","lastUsedAt":null}})";
  fake_server server;
  server.replies = {{200, created}, {200, created}};
  auto r = execute(server, {"create", "--description", "CI"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_TEST(contains(r.out, "18  42    admin"));
  BOOST_TEST(contains(r.out, "2026-12-31T19:00:00Z"));
  BOOST_TEST(contains(r.out, "Key (shown once, keep it now): " + new_key + "\n"));
  r = execute(server, {"create", "--description", "CI", "--output", "json"}, tokend::core::generate_key());
  BOOST_TEST(r.out == created + "\n");

  fake_server del;
  del.replies = {{200, R"({"success":true,"message":"Token deleted successfully"})"}};
  r = execute(del, {"delete", "--id", "18"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out == "Token deleted successfully\n");
  BOOST_TEST(del.calls.at(0).method == "DELETE");
  BOOST_TEST(del.calls.at(0).body == R"({"id":18})");

  fake_server roll;
  roll.replies = {
      {200, R"({"success":true,"message":"Token rolled successfully","token":{"token":")" + new_key +
                R"(","description":"CI","type":"admin","timestamp":"1796151600","userId":42,"id":19,)"
                R"("expiresAt":null,"lastUsedAt":null},"previous":{"id":18,"expiresAt":"1796155200"}})"}};
  r = execute(roll, {"roll", "--id", "18", "--overlap", "1h"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_TEST(contains(r.out, "19  42"));
  BOOST_TEST(contains(r.out, "Key (shown once, keep it now): " + new_key));
  BOOST_TEST(contains(r.out, "Previous key 18 expires 2026-12-01T20:00:00Z\n"));
  BOOST_TEST(roll.calls.at(0).target == "/api/v2/tokens/roll");
}

BOOST_AUTO_TEST_CASE(limit_and_limited_outputs) {
  fake_server server;
  const std::string patched =
      R"({"success":true,"message":"Rate limit updated","id":7,"rateLimit":{"limit":100,"window":1,"burst":200}})";
  server.replies = {{200, patched},
                    {200, R"({"success":true,"message":"Rate limit updated","id":7,"rateLimit":null})"},
                    {200, patched}};
  auto r = execute(server, {"limit", "7", "--rate-limit", "100/1s:200"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out == "Rate limit of key 7: 100/1s burst 200\n");
  BOOST_TEST(server.calls.at(0).method == "PATCH");
  BOOST_TEST(server.calls.at(0).body == R"({"id":7,"rateLimit":{"limit":100,"window":1,"burst":200}})");
  r = execute(server, {"limit", "7", "--default"}, tokend::core::generate_key());
  BOOST_TEST(r.out == "Rate limit of key 7: default\n");
  r = execute(server, {"limit", "7", "--default", "--output", "json"}, tokend::core::generate_key());
  BOOST_TEST(r.out == patched + "\n");

  fake_server refused;
  refused.replies = {{403, R"({"success":false,"message":"Only an operator key may change a rate limit"})"},
                     {429, R"({"success":false,"message":"Rate limit exceeded"})"}};
  r = execute(refused, {"limit", "7", "--default"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.err == "tokend token: HTTP 403: Only an operator key may change a rate limit\n");
  r = execute(refused, {"limited"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.err == "tokend token: HTTP 429: Rate limit exceeded\n");

  fake_server limited;
  const std::string keys =
      R"({"success":true,"keys":[{"userId":42,"id":7,"token":"9fe4f9....",)"
      R"("rateLimit":{"limit":100,"window":1,"burst":100},"refused":3,"admitted":100}]})";
  limited.replies = {{200, keys}, {200, keys}, {200, R"({"success":true})"}};
  r = execute(limited, {"limited", "-n", "1"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 0);
  BOOST_TEST(limited.calls.at(0).target == "/api/v2/tokens/limited?n=1");
  BOOST_TEST(r.out ==
             "USER  ID  PREFIX      RATE LIMIT  REFUSED  ADMITTED\n"
             "42    7   9fe4f9....  100/1s      3        100\n");
  r = execute(limited, {"limited", "--output", "json"}, tokend::core::generate_key());
  BOOST_TEST(r.out == keys + "\n");
  r = execute(limited, {"limited"}, tokend::core::generate_key());
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "\"keys\""));
}

BOOST_AUTO_TEST_CASE(run_exit_statuses) {
  std::ostringstream out;
  std::ostringstream err;
  BOOST_TEST(cli::run({"--help"}, env_of({}), out, err) == 0);
  BOOST_TEST(contains(out.str(), "tokend token create"));
  BOOST_TEST(cli::run({"list"}, env_of({}), out, err) == 2);
  BOOST_TEST(contains(err.str(), "no key"));
  BOOST_TEST(cli::run({"bogus"}, env_of({}), out, err) == 2);
}

BOOST_AUTO_TEST_SUITE_END()
