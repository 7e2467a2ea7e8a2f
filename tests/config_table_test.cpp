// The flag table (server/config_flags.hpp) is the one source of the flags' defaults and help:
// README.md's configuration table must be exactly what `tokend --help-markdown` prints.
#define BOOST_TEST_MODULE config_table_test
#include "server/config.hpp"
#include "server/config_flags.hpp"

#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace server = tokend::server;

namespace {

// The block of lines from the table's header row to the first line that is not a table row.
std::string readme_table() {
  std::ifstream in(std::string(TOKEND_SOURCE_DIR) + "/README.md");
  BOOST_REQUIRE(in);
  std::string line;
  std::string table;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "| flag | variable | default | meaning |") inside = true;
    if (inside && !line.starts_with("|")) break;
    if (inside) table += line + "\n";
  }
  return table;
}

std::string binary_output(const std::string& args) {
  std::string out;
  const std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((TOKEND_BINARY " " + args).c_str(), "r"), pclose);
  BOOST_REQUIRE(pipe);
  std::array<char, 4096> chunk{};
  while (const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe.get()))
    out.append(chunk.data(), n);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(readme_table_is_the_binarys_table) {
  const std::string printed = binary_output("--help-markdown");
  BOOST_TEST(printed == server::flags_markdown());
  // On a difference: run `tokend --help-markdown` and paste its output over README.md's table.
  BOOST_TEST(readme_table() == printed);
}

BOOST_AUTO_TEST_CASE(help_shows_every_flag_with_its_variable_and_default) {
  const std::string help = binary_output("--help");
  for (const auto& flag : server::flag_table()) {
    BOOST_TEST(help.find(std::string(flag.name)) != std::string::npos, flag.name);
    BOOST_TEST(help.find(std::string(flag.env)) != std::string::npos, flag.env);
    if (!flag.negation.empty()) BOOST_TEST(help.find(std::string(flag.negation)) != std::string::npos);
    if (!flag.default_value.empty()) {
      BOOST_TEST(help.find("(default: " + std::string(flag.default_value) + ")") != std::string::npos,
                 flag.name);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_default_config_has_the_tables_defaults) {
  const server::config defaults;
  BOOST_TEST(defaults.listen.host == "0.0.0.0");
  BOOST_TEST(defaults.listen.port == 8080);
  BOOST_TEST(defaults.admin_listen.port == 9090);
  BOOST_TEST(defaults.data_dir == "./data");
  BOOST_TEST((defaults.store == server::store_kind::rocksdb));
  BOOST_TEST(defaults.postgres_url.empty());
  BOOST_TEST(defaults.postgres_schema == "public");
  BOOST_TEST(defaults.postgres_connections == 4u);
  BOOST_TEST(defaults.revocation_poll.count() == 1000);
  BOOST_TEST(defaults.threads == 0u);
  BOOST_TEST(defaults.cache_capacity == 1'000'000u);
  BOOST_TEST(defaults.list_cache_tokens == 100'000u);
  BOOST_TEST(defaults.max_tokens_per_user == 10'000u);
  BOOST_TEST(defaults.max_body_bytes == 16u * 1024);
  BOOST_TEST(defaults.max_header_bytes == 8u * 1024);
  BOOST_TEST(defaults.sync);
  BOOST_TEST(defaults.write_queue == 65536u);
  BOOST_TEST(defaults.max_connections == 10'000u);
  BOOST_TEST(defaults.admin_max_connections == 32u);
  BOOST_TEST(defaults.max_response_bytes_in_flight == std::size_t{64} << 20);
  BOOST_TEST(defaults.idle_timeout.count() == 60'000);
  BOOST_TEST(defaults.request_timeout.count() == 10'000);
  BOOST_TEST(defaults.drain_timeout.count() == 10'000);
  BOOST_TEST(!defaults.drain_idle_grace.has_value());
  BOOST_TEST((defaults.log_level == server::log::level::info));
  BOOST_TEST(!defaults.access_log);
  BOOST_TEST(defaults.rate_limit_sync_interval.count() == 200);
  BOOST_TEST(defaults.test_fault_file.empty());
}
