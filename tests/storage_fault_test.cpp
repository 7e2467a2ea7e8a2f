// Storage faults on the real binary:
//   - a real full disk (a small tmpfs, see support/private_tmpfs.hpp): creates answer 503 with a
//     JSON error, /readyz fails, reads keep working, nothing refused is stored, and once space
//     returns the store resumes by itself (readiness comes back with no write needed) and writes
//     succeed again, before and after a restart;
//   - the fault-injecting store (--test-fault-file): the same promises for an injected failure;
//   - a store that cannot open (corrupt, read-only, or held by another tokend) stops start-up with
//     one line on stderr naming the data directory, and a non-zero exit.
#define BOOST_TEST_MODULE storage_fault_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "support/http_client.hpp"
#include "support/private_tmpfs.hpp"
#include "support/token_shape.hpp"
#include "support/tokend_server.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;
using tokend::test::connection;
using tokend::test::exit_status;
using tokend::test::private_tmpfs;
using tokend::test::reply;
using tokend::test::sandbox;
using tokend::test::tokend_server;

std::string target(const std::string& key) { return "/api/v2/tokens?token=" + key + "&pageSize=1000"; }

reply create(connection& c, const std::string& key, const std::string& description) {
  return c.request(http::verb::post, target(key),
                   json::serialize(json::object{{"type", "admin"}, {"description", description}}));
}

bool is_json_error(const reply& r) {
  boost::system::error_code ec;
  const json::value v = json::parse(r.body, ec);
  return !ec && r.header("content-type") == "application/json" && v.is_object() &&
         v.as_object().size() == 2 && v.at("success") == false && v.at("message").is_string() &&
         !v.at("message").as_string().empty();
}

// The descriptions of `key`'s user, each record checked to be complete.
std::multiset<std::string> listed(connection& c, const std::string& key) {
  const reply r = c.request(http::verb::get, target(key));
  BOOST_REQUIRE_MESSAGE(r.status == 200, "list: " << r.status << " " << r.error << " " << r.body);
  std::multiset<std::string> out;
  const json::value v = r.json();
  for (const auto& t : v.at("tokens").as_array()) {
    const auto& o = t.as_object();
    BOOST_TEST((tokend::test::is_listed_token(o) && o.at("token").as_string().size() == 10 &&
                o.at("type") == "admin" && o.at("expiresAt").is_null() && o.at("rateLimit").is_null()),
               "incomplete record: " << json::serialize(o));
    out.insert(std::string(o.at("description").as_string()));
  }
  return out;
}

unsigned admin_status(std::uint16_t admin_port, const std::string& path) {
  return tokend::test::request(admin_port, http::verb::get, path).status;
}

// Polls /readyz until it answers `status`, within `limit`.
bool readyz_becomes(std::uint16_t admin_port, unsigned status, std::chrono::milliseconds limit) {
  const auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (admin_status(admin_port, "/readyz") == status) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(full_disk_is_503_then_resumes_when_space_returns) {
  // 128 MiB: RocksDB clears a no-space error only once 64 MiB (its write buffer) are free again.
  // RocksDB preallocates ~70 MiB for a WAL when it can, which would hide a full disk from writes:
  // `reserve` leaves it less than that at start, then `rest` takes every page left.
  sandbox box;
  std::string why_not;
  auto disk = private_tmpfs::mount(box.root(), "128m", false, why_not);
  if (!disk) {
    BOOST_TEST_MESSAGE("SKIPPED: no tmpfs can be mounted here (" << why_not << ")");
    return;
  }
  const fs::path reserve = disk->path() / "reserve";
  const fs::path rest = disk->path() / "rest";
  BOOST_REQUIRE(tokend::test::fill_file(reserve, 96ull << 20) == 96ull << 20);

  const std::string admin = tokend::core::generate_key();
  tokend_server::options options;
  options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + admin};
  options.data_dir = (disk->path() / "data").string();
  std::multiset<std::string> acked{"bootstrap"};
  std::vector<std::string> acked_keys;
  std::set<std::string> refused;
  {
    tokend_server server(box, options);
    connection c(server.api_port(), 5s);
    for (int i = 0; i < 5; ++i) {
      const auto r = create(c, admin, "before " + std::to_string(i));
      BOOST_REQUIRE_EQUAL(r.status, 200u);
      acked.insert("before " + std::to_string(i));
    }

    tokend::test::fill_file(rest);  // the disk is full now
    // The WAL's last page may take a few more records; then every create must fail cleanly.
    int failed = 0;
    for (int i = 0; i < 2000 && failed < 5; ++i) {
      const std::string description = "full " + std::to_string(i);
      const auto r = create(c, admin, description);
      BOOST_TEST_CONTEXT(description) {
        BOOST_REQUIRE_MESSAGE((r.status == 200 || r.status == 503),
                              r.status << " " << r.error << " " << r.body);
        if (r.status == 200) {
          BOOST_TEST(failed == 0, "a create succeeded after one had failed, with the disk still full");
          acked.insert(description);
          acked_keys.push_back(std::string(r.json().at("token").at("token").as_string()));
        } else {
          BOOST_TEST(is_json_error(r), r.body);
          refused.insert(description);
          ++failed;
        }
      }
    }
    BOOST_REQUIRE_MESSAGE(failed == 5, "the full disk never failed a create");
    BOOST_TEST(admin_status(server.admin_port(), "/readyz") == 503u);
    BOOST_TEST(admin_status(server.admin_port(), "/healthz") == 200u);
    BOOST_TEST(listed(c, admin) == acked);  // reads work; nothing refused was stored

    fs::remove(rest);
    fs::remove(reserve);
    // No write is sent meanwhile: readiness must return by itself (RocksDB polls every 5 s).
    const auto freed = steady::now();
    BOOST_REQUIRE_MESSAGE(readyz_becomes(server.admin_port(), 200, 20s), "/readyz never recovered");
    BOOST_TEST_MESSAGE("ready again "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - freed).count()
                       << " ms after space returned");
    const auto after = create(c, admin, "after");
    BOOST_TEST(after.status == 200u, after.status << " " << after.body);
    acked.insert("after");
    BOOST_TEST(listed(c, admin) == acked);
    BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
  }
  // After a restart: the same records, every acknowledged key works, and writes do.
  tokend_server server(box, options);
  connection c(server.api_port(), 5s);
  BOOST_TEST(listed(c, admin) == acked);
  for (const auto& key : acked_keys) BOOST_TEST(c.request(http::verb::get, target(key)).status == 200u);
  BOOST_TEST(create(c, admin, "after restart").status == 200u);
  BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
  // It was a real ENOSPC, reported through tokend's log (RocksDB writes no LOG file of its own).
  const std::string output = box.all_output();
  BOOST_TEST(output.find("No space left on device") != std::string::npos);
  BOOST_TEST(!fs::exists(disk->path() / "data" / "LOG"));
}

BOOST_AUTO_TEST_CASE(injected_write_failure_is_503_and_stores_nothing) {
  sandbox box;
  const std::string admin = tokend::core::generate_key();
  const fs::path fault = box.root() / "fault";
  tokend_server::options options;
  options.args = {"--test-fault-file", fault.string()};
  options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + admin};
  tokend_server server(box, options);
  connection c(server.api_port(), 5s);
  const auto victim = create(c, admin, "victim");
  BOOST_REQUIRE_EQUAL(victim.status, 200u);
  const std::string victim_key(victim.json().at("token").at("token").as_string());

  std::ofstream(fault) << "fail";
  const auto refused = create(c, admin, "refused");
  BOOST_TEST(refused.status == 503u);
  BOOST_TEST(is_json_error(refused), refused.body);
  const auto not_deleted =
      c.request(http::verb::delete_, target(admin), json::serialize(json::object{{"token", victim_key}}));
  BOOST_TEST(not_deleted.status == 503u);
  BOOST_TEST(is_json_error(not_deleted), not_deleted.body);
  BOOST_TEST(admin_status(server.admin_port(), "/readyz") == 503u);
  BOOST_TEST(listed(c, admin) == (std::multiset<std::string>{"bootstrap", "victim"}));
  BOOST_TEST(c.request(http::verb::get, target(victim_key)).status == 200u);

  fs::remove(fault);
  BOOST_TEST(readyz_becomes(server.admin_port(), 200, 5s));
  BOOST_TEST(create(c, admin, "resumed").status == 200u);
  BOOST_TEST(listed(c, admin) == (std::multiset<std::string>{"bootstrap", "victim", "resumed"}));
  BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
}

// One line on stderr naming the directory, a non-zero exit, and never "listening".
void check_refused_start(const tokend::test::finished& r, const std::string& dir) {
  BOOST_TEST(r.status.exited, r.status.describe());
  BOOST_TEST(r.status.code != 0);
  BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, "stderr: " << r.err);
  BOOST_TEST(r.err.find(dir) != std::string::npos, "stderr: " << r.err);
  BOOST_TEST(r.out.find("tokend listening") == std::string::npos);
}

std::vector<std::string> serve_args(const std::string& dir) {
  return {"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dir};
}

BOOST_AUTO_TEST_CASE(unopenable_store_stops_start_up_with_one_line) {
  sandbox box;
  // Held by a running tokend (RocksDB's LOCK).
  {
    tokend_server first(box, {});
    const auto second = tokend::test::run_tokend_to_end(box, "second", serve_args(box.data_dir().string()));
    BOOST_TEST_CONTEXT("locked") { check_refused_start(second, box.data_dir().string()); }
    BOOST_TEST(first.proc().running());
    BOOST_TEST(first.terminate(10s).value_or(exit_status{}).success());
  }
  // Corrupt: CURRENT names a manifest that is not there.
  {
    std::ofstream(box.data_dir() / "CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
    const auto r = tokend::test::run_tokend_to_end(box, "corrupt", serve_args(box.data_dir().string()));
    BOOST_TEST_CONTEXT("corrupt") { check_refused_start(r, box.data_dir().string()); }
  }
  // Not writable, even for root: a read-only file system.
  std::string why_not;
  if (auto ro = private_tmpfs::mount(box.root(), "1m", true, why_not)) {
    const std::string dir = (ro->path() / "data").string();
    const auto r = tokend::test::run_tokend_to_end(box, "readonly", serve_args(dir));
    BOOST_TEST_CONTEXT("read-only") { check_refused_start(r, dir); }
  } else {
    BOOST_TEST_MESSAGE("read-only case SKIPPED: " << why_not);
  }
}

}  // namespace
