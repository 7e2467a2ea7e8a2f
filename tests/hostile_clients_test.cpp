// Hostile clients over real sockets (an app on 127.0.0.1:0 over the in-memory store): slowloris,
// hundreds of idle connections, oversized headers and bodies, request-smuggling framings,
// malformed percent-encoding and random bytes, all at once, while well-behaved clients measure
// their latency. Every hostile request is answered 4xx or closed, never 5xx; the good clients are
// all served, each request within a generous bound. And the connection cap (--max-connections):
// beyond it new connections are closed at once, unanswered, and served again once below it.
#define BOOST_TEST_MODULE hostile_clients_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "core/token.hpp"
#include "server/app.hpp"
#include "server/config.hpp"
#include "storage/memory_store.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace server = tokend::server;
namespace storage = tokend::storage;
namespace core = tokend::core;
namespace test = tokend::test;
namespace json = boost::json;
namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;

constexpr auto request_timeout = 1s;  // the server's deadline for a whole request (slowloris)
constexpr auto attack_window = 3s;
constexpr auto good_latency_bound = 1s;

long long ms(steady::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// An app with one key for user 1, stored before it starts.
class hostile_target {
 public:
  explicit hostile_target(std::size_t max_connections) {
    server::config cfg;
    cfg.listen = server::endpoint_spec{"127.0.0.1", 0};
    cfg.admin_listen = server::endpoint_spec{"127.0.0.1", 0};
    cfg.data_dir = dir_.path().string();
    cfg.threads = 2;
    cfg.max_body_bytes = 16 * 1024;
    cfg.max_header_bytes = 8 * 1024;
    cfg.request_timeout = request_timeout;
    cfg.idle_timeout = 30s;  // idle attackers stay for the whole window
    cfg.max_connections = max_connections;
    auto store = storage::make_memory_store();
    key = core::generate_key();
    std::promise<boost::system::error_code> stored;
    store->async_create(core::make_token_record(key, 1, "bootstrap", "admin", 1'700'000'000),
                        [&stored](boost::system::error_code ec) { stored.set_value(ec); });
    auto result = stored.get_future();
    BOOST_REQUIRE(result.wait_for(5s) == std::future_status::ready);
    BOOST_REQUIRE(!result.get());
    app_ = std::make_unique<server::app>(cfg, std::move(store));
    app_->start(false);
    port = app_->api_port();
    admin_port = app_->admin_port();
  }
  ~hostile_target() {
    app_->request_stop();
    app_->wait();
  }

  // A figure from /metrics: the sum of every series whose line starts with `prefix`.
  [[nodiscard]] long long metric(const std::string& prefix) const {
    long long sum = 0;
    std::istringstream lines(app_->metrics_text());
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with(prefix)) sum += std::stoll(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

  std::string key;
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;

 private:
  test::temp_dir dir_;
  std::unique_ptr<server::app> app_;
};

// The status of the first response in raw bytes; 0 when there is none (closed unanswered).
unsigned status_of(const std::string& received) {
  if (received.size() < 12 || !received.starts_with("HTTP/1.")) return 0;
  return static_cast<unsigned>(std::stoi(received.substr(9, 3)));
}

// The hostile requests, as raw bytes. Each is sent on a fresh connection.
std::vector<std::pair<std::string, std::string>> hostile_requests(const std::string& key, std::mt19937& rng) {
  const std::string create = R"({"type":"admin","description":"smuggled"})";
  const std::string path = "/api/v2/tokens?token=" + key;
  std::string random_bytes(1 + rng() % 4096, '\0');
  for (auto& c : random_bytes) c = static_cast<char>(rng());
  std::string many_headers;
  for (int i = 0; i < 1000; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  return {
      {"oversized header", "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n"},
      {"many headers", "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + many_headers + "\r\n"},
      {"oversized target", "GET " + path + "&pad=" + std::string(32 * 1024, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"oversized body", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n" +
                             std::string(200000, ' ')},
      {"oversized chunk", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           "ffffffffff\r\n" + std::string(1000, 'x')},
      {"conflicting Content-Length", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                                         std::to_string(create.size()) + "\r\nContent-Length: 3\r\n\r\n" + create},
      {"Content-Length list", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                                  std::to_string(create.size()) + ", 3\r\n\r\n" + create},
      {"Content-Length with Transfer-Encoding", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                                                    std::to_string(create.size() + 5) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + create},
      {"bad percent-encoding in token", "GET /api/v2/tokens?token=%zz" + key.substr(4) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"truncated percent-encoding", "GET /api/v2/tokens?token=" + key + "% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"percent-encoded NUL", "GET /api/v2/tokens?token=%00" + key + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"bad percent-encoding in path", "GET /api/v2/tok%G1ens?token=" + key + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"bare percent query", "GET /api/v2/tokens?%%%=%&& HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"overlong UTF-8 in query", "GET /api/v2/tokens?token=%C0%AF%E0%80%80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"NUL in header", std::string("GET /api/v2/tokens HTTP/1.1\r\nHost: x\r\nX-A: a") + '\0' + "b\r\n\r\n"},
      {"header without colon", "GET /api/v2/tokens HTTP/1.1\r\nHost x\r\n\r\n"},
      {"bad version", "GET /api/v2/tokens HTTP/9.9\r\nHost: x\r\n\r\n"},
      {"bad method", "G\x01T /api/v2/tokens HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"bad chunk size", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
      {"random bytes", random_bytes + "\r\n\r\n"},
  };
}

struct tally {
  std::mutex mutex;
  std::vector<std::string> problems;
  void problem(std::string p) {
    std::lock_guard lock(mutex);
    problems.push_back(std::move(p));
  }
};

// Sends hostile requests, each on a fresh connection, until `until`. Anything but 4xx or a
// close without an answer is a problem.
void attack(std::uint16_t port, const std::string& key, std::uint32_t seed, steady::time_point until, tally& t,
            std::atomic<int>& sent) {
  std::mt19937 rng(seed);
  while (steady::now() < until) {
    for (const auto& [name, bytes] : hostile_requests(key, rng)) {
      try {
        test::connection c(port, 2s);
        const std::string received = c.raw(bytes, 1500ms);
        const unsigned status = status_of(received);
        if (status != 0 && (status < 400 || status > 499)) {
          t.problem(name + ": status " + std::to_string(status) + ": " + received.substr(0, 200));
        }
        ++sent;
      } catch (const std::exception& e) {
        t.problem(name + ": " + e.what());
      }
    }
  }
}

// Slowloris: header lines that never end, one every 100 ms on each of `n` connections. The server
// must close each within its request deadline (plus slack), without a 5xx.
void slowloris(std::uint16_t port, int n, tally& t, std::atomic<int>& closed_in_time) {
  struct victim {
    std::unique_ptr<test::connection> c;
    steady::time_point started;
    bool closed = false;
  };
  std::vector<victim> v;
  for (int i = 0; i < n; ++i) {
    v.push_back({std::make_unique<test::connection>(port, 2s), steady::now()});
    if (!v.back().c->write_raw("GET /api/v2/tokens HTTP/1.1\r\nHost: x\r\n")) t.problem("slowloris: first write failed");
  }
  const auto give_up = steady::now() + request_timeout + 3s;
  for (int line = 0; steady::now() < give_up; ++line) {
    bool all_closed = true;
    for (auto& s : v) {
      if (s.closed) continue;
      // A write to a connection the server has closed fails (at the latest on the second try).
      if (!s.c->write_raw("X-Slow-" + std::to_string(line) + ": still coming\r\n")) {
        s.closed = true;
        if (steady::now() - s.started <= request_timeout + 1500ms) ++closed_in_time;
        continue;
      }
      all_closed = false;
    }
    if (all_closed) break;
    std::this_thread::sleep_for(100ms);  // the attacker's pace, not a wait for a condition
  }
  for (auto& s : v) {
    if (!s.closed) t.problem("slowloris connection still open after " + std::to_string(ms(steady::now() - s.started)) + " ms");
  }
}

// A well-behaved client: create, list, a wrong key (401); a new connection every 10 rounds.
void good_client(std::uint16_t port, const std::string& key, steady::time_point until, tally& t,
                 std::atomic<int>& served, std::atomic<long long>& worst_ms) {
  const std::string wrong = core::generate_key();
  const std::string create = R"({"type":"admin","description":"good"})";
  std::unique_ptr<test::connection> c;
  for (int round = 0; steady::now() < until; ++round) {
    const struct {
      http::verb method;
      std::string target;
      std::string body;
      unsigned expected;
    } steps[] = {{http::verb::post, "/api/v2/tokens?token=" + key, create, 200},
                 {http::verb::get, "/api/v2/tokens?token=" + key + "&pageSize=5", {}, 200},
                 {http::verb::get, "/api/v2/tokens?token=" + wrong, {}, 401}};
    for (const auto& s : steps) {
      const auto started = steady::now();
      try {
        if (!c || round % 10 == 0) c = std::make_unique<test::connection>(port, 5s);
        const auto r = c->request(s.method, s.target, s.body);
        const auto took = ms(steady::now() - started);
        long long seen = worst_ms.load();
        while (took > seen && !worst_ms.compare_exchange_weak(seen, took)) {
        }
        if (r.status != s.expected) {
          t.problem("good client: " + std::to_string(r.status) + " " + r.error + " " + r.body);
          c.reset();
        } else {
          ++served;
        }
      } catch (const std::exception& e) {
        t.problem(std::string("good client: ") + e.what());
        c.reset();
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(attacks_are_4xx_or_closed_while_good_clients_are_served) {
  hostile_target target(10'000);
  const std::uint32_t seed = std::random_device{}();
  std::cout << "hostile_clients_test: random-bytes seed " << seed << std::endl;

  // Hundreds of idle connections, held for the whole attack.
  std::vector<std::unique_ptr<test::connection>> idle;
  for (int i = 0; i < 300; ++i) idle.push_back(std::make_unique<test::connection>(target.port, 2s));

  tally t;
  std::atomic<int> hostile_sent{0}, slow_closed{0}, served{0};
  std::atomic<long long> worst_ms{0};
  constexpr int slow_connections = 50;
  const auto until = steady::now() + attack_window;
  std::vector<std::thread> threads;
  for (std::uint32_t i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { attack(target.port, target.key, seed + i, until, t, hostile_sent); });
  }
  threads.emplace_back([&] { slowloris(target.port, slow_connections, t, slow_closed); });
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] { good_client(target.port, target.key, until, t, served, worst_ms); });
  }
  for (auto& th : threads) th.join();

  for (const auto& p : t.problems) BOOST_ERROR(p);
  BOOST_TEST(slow_closed.load() == slow_connections, slow_closed.load() << " slowloris connections closed in time");
  BOOST_TEST(hostile_sent.load() > 50, hostile_sent.load() << " hostile requests");
  BOOST_TEST(served.load() > 100, served.load() << " good requests served");
  BOOST_TEST(worst_ms.load() < ms(good_latency_bound), "slowest good request: " << worst_ms.load() << " ms");
  BOOST_TEST_MESSAGE(hostile_sent.load() << " hostile requests, " << served.load() << " good requests, slowest "
                                         << worst_ms.load() << " ms");

  // The idle connections are still there (the idle timeout is longer than the attack), and no
  // request of any kind was answered 5xx.
  BOOST_TEST(target.metric("tokend_open_connections ") >= 300);
  BOOST_TEST(target.metric("tokend_http_requests_total{route=\"create\",status=\"5") +
                 target.metric("tokend_http_requests_total{route=\"list\",status=\"5") +
                 target.metric("tokend_http_requests_total{route=\"delete\",status=\"5") +
                 target.metric("tokend_http_requests_total{route=\"other\",status=\"5") ==
             0);
  BOOST_TEST(test::request(target.port, http::verb::get, "/api/v2/tokens?token=" + target.key).status == 200u);
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_cap_are_closed_at_once) {
  constexpr std::size_t cap = 20;
  hostile_target target(cap);
  std::vector<std::unique_ptr<test::connection>> held;
  for (std::size_t i = 0; i < cap; ++i) {
    held.push_back(std::make_unique<test::connection>(target.port, 2s));
    // Served, so certainly accepted and counted.
    BOOST_REQUIRE_EQUAL(held.back()->request(http::verb::get, "/api/v2/tokens?token=" + target.key).status, 200u);
  }
  BOOST_TEST(target.metric("tokend_open_connections ") == static_cast<long long>(cap));

  // One more: the kernel completes the handshake, tokend closes it unanswered, promptly.
  const auto started = steady::now();
  test::connection extra(target.port, 2s);
  const std::string received = extra.raw("GET /api/v2/tokens?token=" + target.key + " HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
  BOOST_TEST(received.empty(), "an over-cap connection got an answer: " << received.substr(0, 100));
  BOOST_TEST(ms(steady::now() - started) < 1000, "closing took " << ms(steady::now() - started) << " ms");
  BOOST_TEST(target.metric("tokend_http_connections_refused_total ") == 1);
  // The admin listener has a cap of its own: a full API does not take its connections.
  BOOST_TEST(test::request(target.admin_port, http::verb::get, "/healthz").status == 200u);
  // The held connections are still served.
  BOOST_TEST(held.front()->request(http::verb::get, "/api/v2/tokens?token=" + target.key).status == 200u);

  // Below the cap again, a new connection is served.
  held.pop_back();
  const auto deadline = steady::now() + 5s;
  while (target.metric("tokend_open_connections ") >= static_cast<long long>(cap) && steady::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  BOOST_REQUIRE(target.metric("tokend_open_connections ") == static_cast<long long>(cap - 1));
  test::connection again(target.port, 2s);
  BOOST_TEST(again.request(http::verb::get, "/api/v2/tokens?token=" + target.key).status == 200u);
}

}  // namespace
