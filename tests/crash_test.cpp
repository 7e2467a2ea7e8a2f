// Crash cycles on the real binary: tokend serves concurrent creates on several connections and is
// killed with SIGKILL at a random moment, then restarted, many times over. After every restart:
//   - every key that got a 200 still authenticates;
//   - every listed record is complete and well-formed, and acked ⊆ listed ⊆ attempted (a create
//     cut off by the kill may or may not have landed, but nothing appears that was never sent,
//     twice, or half-written).
// Cycle i bootstraps its own user (i + 1), so each user's list is exactly one cycle's creates.
//
// Short by default (CI); the long run is the same test with more cycles:
//   TOKEND_CRASH_CYCLES=500 build/test/tests/crash_test
// The seed (kill delays) is printed; TOKEND_CRASH_SEED=<seed> replays the same delays (thread
// timing still varies from run to run).
#define BOOST_TEST_MODULE crash_test
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "support/http_client.hpp"
#include "support/keys.hpp"
#include "support/token_shape.hpp"
#include "support/tokend_server.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;
using tokend::test::connection;
using tokend::test::masked;
using tokend::test::reply;
using tokend::test::sandbox;
using tokend::test::tokend_server;

constexpr int workers = 4;             // client connections creating concurrently
constexpr auto min_kill_delay = 20ms;  // the kill lands uniformly in [min, max] after load starts
constexpr auto max_kill_delay = 400ms;
constexpr std::size_t full_check_limit = 3000;  // beyond this many acked keys, older cycles are sampled
constexpr std::size_t sample_size = 500;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::stoull(v);
}

std::string target(const std::string& key, const std::string& query = {}) {
  return "/api/v2/tokens?token=" + key + query;
}

// What one cycle did: its user's bootstrap key, every description sent, and the 200s.
struct cycle_log {
  std::uint64_t user = 0;
  std::string admin;
  std::set<std::string> attempted;
  std::map<std::string, std::string> acked;  // description -> key
};

// Runs create load on `workers` connections until tokend dies; returns problems seen before the kill.
std::vector<std::string> create_until_killed(tokend_server& server, cycle_log& log,
                                             std::chrono::milliseconds delay, int cycle) {
  std::mutex mutex;
  std::atomic<bool> killed{false};
  std::vector<std::string> problems;
  const auto deadline = steady::now() + 30s;  // a worker never outlives this, kill or not
  auto work = [&](int id) {
    try {
      connection c(server.api_port(), 5s);
      for (int n = 0; steady::now() < deadline; ++n) {
        const std::string description =
            "c" + std::to_string(cycle) + "-w" + std::to_string(id) + "-" + std::to_string(n);
        {
          std::lock_guard lock(mutex);
          log.attempted.insert(description);
        }
        const auto body = json::serialize(json::object{{"type", "admin"}, {"description", description}});
        const reply r = c.request(http::verb::post, target(log.admin), body);
        std::lock_guard lock(mutex);
        if (r.status == 200) {
          // A 200 is a promise even if it arrives after the kill was sent.
          const auto token = r.json().at("token").as_object();
          if (token.at("description").as_string() != description)
            problems.push_back("create echoed another description");
          log.acked[description] = std::string(token.at("token").as_string());
          continue;
        }
        if (!killed)
          problems.push_back("before the kill: status " + std::to_string(r.status) + " " + r.error + " " +
                             r.body);
        return;
      }
      std::lock_guard lock(mutex);
      problems.push_back("worker " + std::to_string(id) + " was never cut off");
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex);
      if (!killed) problems.push_back(std::string("worker failed before the kill: ") + e.what());
    }
  };
  std::vector<std::thread> threads;
  for (int id = 0; id < workers; ++id) threads.emplace_back(work, id);
  // Not a wait for a condition: the kill's moment is what the seed chose.
  std::this_thread::sleep_for(delay);
  killed = true;
  server.proc().kill(SIGKILL);
  for (auto& t : threads) t.join();
  const auto status = server.proc().wait_exit(10s);
  if (!status || !status->signaled || status->signal != SIGKILL)
    problems.push_back("tokend did not die of SIGKILL");
  return problems;
}

bool digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// The whole list of the cycle's user, checked record by record against what the cycle did.
void check_list(connection& c, const cycle_log& log, int cycle) {
  BOOST_TEST_CONTEXT("cycle " << cycle << " (user " << log.user << ")") {
    std::map<std::string, std::string> listed;  // description -> masked token
    std::size_t bootstraps = 0;
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (std::size_t page = 0;; ++page) {
      const reply r =
          c.request(http::verb::get, target(log.admin, "&pageSize=1000&page=" + std::to_string(page)));
      BOOST_REQUIRE_MESSAGE(r.status == 200, "list: " << r.status << " " << r.error << " " << r.body);
      const json::value v = r.json();
      for (const auto& t : v.at("tokens").as_array()) {
        const auto& o = t.as_object();
        const bool complete = tokend::test::is_listed_token(o);
        BOOST_REQUIRE_MESSAGE(complete, "incomplete record: " << json::serialize(o));
        const std::string token(o.at("token").as_string());
        const std::string description(o.at("description").as_string());
        const std::string timestamp(o.at("timestamp").as_string());
        BOOST_TEST((token.size() == 10 && token.ends_with("....") &&
                    token.substr(0, 6).find_first_not_of("0123456789abcdef") == std::string::npos),
                   token);
        BOOST_TEST(o.at("type").as_string() == "admin");
        BOOST_TEST(o.at("userId").to_number<std::uint64_t>() == log.user);
        BOOST_TEST(
            (digits(timestamp) && std::stoll(timestamp) > now - 3600 && std::stoll(timestamp) <= now + 60),
            timestamp);
        if (description == "bootstrap") {
          ++bootstraps;
          continue;
        }
        BOOST_TEST(log.attempted.contains(description), "listed but never sent: " << description);
        BOOST_TEST(listed.emplace(description, token).second, "listed twice: " << description);
      }
      if (!v.at("hasMore").as_bool()) break;
    }
    BOOST_TEST(bootstraps == 1u);
    std::size_t missing = 0;
    for (const auto& [description, key] : log.acked) {
      const auto it = listed.find(description);
      if (it == listed.end()) {
        ++missing;
      } else {
        BOOST_TEST(it->second == masked(key), description);
      }
    }
    BOOST_TEST(missing == 0u, missing << " acknowledged creates missing from the list");
  }
}

// Every key given: each must authenticate as its cycle's user.
void check_keys(connection& c, const std::vector<std::pair<const cycle_log*, std::string>>& keys) {
  std::size_t lost = 0;
  for (const auto& [log, key] : keys) {
    const reply r = c.request(http::verb::get, target(key, "&pageSize=1"));
    if (r.status != 200) {
      ++lost;
      BOOST_TEST_MESSAGE("lost: user " << log->user << " key " << key.substr(0, 6) << ": " << r.status << " "
                                       << r.error);
    }
  }
  BOOST_TEST(lost == 0u, lost << " of " << keys.size() << " acknowledged keys no longer authenticate");
}

// Checks after a restart: the cycles listed in full, the keys of `cycles` (all, or the last one
// plus a sample of the others when there are many).
void verify(std::uint16_t port, const std::vector<cycle_log>& cycles, bool everything, std::mt19937_64& rng) {
  connection c(port, 10s);
  std::size_t total = 0;
  for (const auto& log : cycles) total += log.acked.size();
  const bool full = everything || total <= full_check_limit;
  std::vector<std::pair<const cycle_log*, std::string>> keys;
  std::vector<std::pair<const cycle_log*, std::string>> older;
  for (std::size_t i = 0; i < cycles.size(); ++i) {
    const bool last = i + 1 == cycles.size();
    if (full || last) check_list(c, cycles[i], static_cast<int>(i));
    for (const auto& [description, key] : cycles[i].acked)
      (full || last ? keys : older).emplace_back(&cycles[i], key);
  }
  std::shuffle(older.begin(), older.end(), rng);
  if (older.size() > sample_size) older.resize(sample_size);
  keys.insert(keys.end(), older.begin(), older.end());
  check_keys(c, keys);
}

BOOST_AUTO_TEST_CASE(sigkill_under_concurrent_creates) {
  const std::uint64_t cycles = env_number("TOKEND_CRASH_CYCLES", 10);
  const std::uint64_t seed = env_number("TOKEND_CRASH_SEED", std::random_device{}());
  // On stdout whatever the log level, so that a failing CI run shows how to replay it.
  std::cout << "crash_test: seed " << seed << ", " << cycles << " cycles (replay: TOKEND_CRASH_SEED=" << seed
            << " TOKEND_CRASH_CYCLES=" << cycles << ")" << std::endl;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long long> delay_ms(min_kill_delay.count(), max_kill_delay.count());

  sandbox box;
  std::vector<cycle_log> done;
  const auto started = steady::now();
  for (std::uint64_t i = 0; i < cycles; ++i) {
    cycle_log log;
    log.user = i + 1;
    log.admin = tokend::core::generate_key();
    const auto delay = std::chrono::milliseconds(delay_ms(rng));
    tokend_server::options options;
    // No bound on tokens per user: how many creates a cycle makes before its kill depends on the
    // disk, and a fast one could pass the default 10000.
    options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + log.admin,
                   "TOKEND_BOOTSTRAP_USER_ID=" + std::to_string(log.user), "TOKEND_MAX_TOKENS_PER_USER=0"};
    tokend_server server(box, options);
    // The previous cycle's kill is judged by this fresh process (the bootstrap of this cycle's
    // user has already written to the store it recovered).
    if (!done.empty()) verify(server.api_port(), done, false, rng);
    // Stop at the first broken cycle: the ones after it would only repeat the news.
    if (!boost::unit_test::results_collector.results(boost::unit_test::framework::current_test_case().p_id)
             .passed()) {
      BOOST_FAIL("stopping after cycle " << i << " (seed " << seed << ")");
    }
    const auto problems = create_until_killed(server, log, delay, static_cast<int>(i));
    for (const auto& p : problems) BOOST_ERROR("cycle " << i << ": " << p);
    BOOST_TEST_MESSAGE("cycle " << i << ": killed after " << delay.count() << " ms, " << log.acked.size()
                                << " acked of " << log.attempted.size() << " sent");
    done.push_back(std::move(log));
  }
  // A last start that checks everything, then a graceful stop.
  tokend_server server(box, {});
  verify(server.api_port(), done, true, rng);
  const auto stopped = server.terminate(10s);
  BOOST_TEST((stopped && stopped->success()), "the last start did not stop cleanly ("
                                                  << (stopped ? stopped->describe() : "still running")
                                                  << "); stderr: " << server.proc().stderr_text());

  std::size_t acked = 0, sent = 0;
  for (const auto& log : done) {
    acked += log.acked.size();
    sent += log.attempted.size();
  }
  std::cout << "crash_test: " << cycles << " SIGKILLs, " << acked << " creates acknowledged of " << sent
            << " sent, " << std::chrono::duration_cast<std::chrono::seconds>(steady::now() - started).count()
            << " s" << std::endl;
  BOOST_TEST(acked > 0u, "no create was ever acknowledged: the kills proved nothing");
}

}  // namespace
