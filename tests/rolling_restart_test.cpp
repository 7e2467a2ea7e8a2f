// Rolling restarts behind a plain load balancer: a real nginx (an upstream with keepalive, the usual
// `proxy_next_upstream error timeout`, so a POST already sent is never retried) in front of two
// tokend on one PostgreSQL. Clients create and list through nginx while each instance in turn gets
// SIGTERM and a replacement starts on its port. Not one request may fail: the lame-duck drain must
// answer whatever nginx sends down a kept-alive connection as the drain begins, never close it
// under the request.
#define BOOST_TEST_MODULE rolling_restart_test
#include <boost/test/unit_test.hpp>

#include "support/http_client.hpp"
#include "support/nginx.hpp"
#include "support/postgres.hpp"
#include "support/tokend_server.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;
namespace test = tokend::test;
using steady = std::chrono::steady_clock;

constexpr int rounds = 3;          // each round restarts both instances, one after the other
constexpr int creators = 4;        // clients creating tokens
constexpr int listers = 1;         // clients listing
constexpr auto test_budget = 55s;  // the whole test, start-up included

// An instance's flags: its API port fixed, so that its replacement takes the same place in nginx.
test::tokend_server::options instance(std::uint16_t port, const std::vector<std::string>& env) {
  test::tokend_server::options o;
  o.args = {"--drain-timeout", "5s"};  // the idle grace is left at its default
  if (port != 0) o.args.insert(o.args.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
  o.env = env;
  return o;
}

std::string nginx_http_block(std::uint16_t listen, std::uint16_t a, std::uint16_t b) {
  // fail_timeout is shortened from 10s so that a restarted instance is back in rotation within
  // the test's pace; everything else is the stock behaviour of a keepalive upstream.
  const auto server = [](std::uint16_t p) {
    return "    server 127.0.0.1:" + std::to_string(p) + " max_fails=1 fail_timeout=1s;\n";
  };
  return "  upstream tokend {\n" + server(a) + server(b) +
         "    keepalive 16;\n"
         "  }\n"
         "  server {\n"
         "    listen 127.0.0.1:" +
         std::to_string(listen) +
         ";\n"
         "    location / {\n"
         "      proxy_pass http://tokend;\n"
         "      proxy_http_version 1.1;\n"
         "      proxy_set_header Connection \"\";\n"
         "      proxy_next_upstream error timeout;\n"
         "      proxy_connect_timeout 2s;\n"
         "      proxy_read_timeout 10s;\n"
         "    }\n"
         "  }\n";
}

// The API requests an instance has answered, from its /metrics.
std::uint64_t answered(std::uint16_t admin_port) {
  const auto r = test::request(admin_port, http::verb::get, "/metrics");
  if (r.status != 200) return 0;
  std::uint64_t total = 0;
  std::size_t at = 0;
  while ((at = r.body.find("\ntokend_http_requests_total{", at)) != std::string::npos) {
    const auto line_end = r.body.find('\n', at + 1);
    const auto space = r.body.rfind(' ', line_end);
    total += std::stoull(r.body.substr(space + 1, line_end - space - 1));
    at = line_end;
  }
  return total;
}

struct tally {
  std::atomic<std::uint64_t> creates{0};
  std::atomic<std::uint64_t> lists{0};
  std::atomic<std::uint64_t> failures{0};
  std::mutex mutex;
  std::vector<std::string> first_failures;

  void failed(const std::string& what, const test::reply& r) {
    failures.fetch_add(1);
    std::lock_guard lock(mutex);
    if (first_failures.size() < 10) {
      first_failures.push_back(what + ": status " + std::to_string(r.status) + " " + r.error + " " +
                               r.body.substr(0, 200));
    }
  }
};

// One client on its own keep-alive connection to nginx, until `stop`.
void client(std::uint16_t port, const std::string& key, bool creates, const std::atomic<bool>& stop,
            tally& t) {
  const std::string target = "/api/v2/tokens?token=" + key;
  const std::string body = R"({"type":"admin","description":"rolling"})";
  std::unique_ptr<test::connection> c;
  while (!stop.load()) {
    if (!c) {
      try {
        c = std::make_unique<test::connection>(port, 10s);
      } catch (const std::exception& e) {
        test::reply r;
        r.error = e.what();
        t.failed("connect to nginx", r);
        std::this_thread::sleep_for(10ms);  // a pace, so a dead nginx fails the test instead of spinning
        continue;
      }
    }
    const auto r = creates ? c->request(http::verb::post, target, body) : c->request(http::verb::get, target);
    if (r.status != 200) {
      t.failed(creates ? "create" : "list", r);
      c.reset();
      continue;
    }
    (creates ? t.creates : t.lists).fetch_add(1);
    if (!r.keep_alive) c.reset();  // nginx ends a client connection after keepalive_requests
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(postgres, *boost::unit_test::label("postgres"))

BOOST_AUTO_TEST_CASE(rolling_restarts_behind_nginx_fail_no_request) {
  const auto test_started = steady::now();
  test::sandbox box;
  const std::string admin = test::keygen(box);
  // No bound on tokens per user: the creators run for as long as the restarts take, and a fast
  // machine makes more than the default 10000 for the one user they create for.
  const std::vector<std::string> env{"TOKEND_STORE=postgres",
                                     "TOKEND_POSTGRES_URL=" + test::postgres_url(),
                                     "TOKEND_POSTGRES_SCHEMA=" + test::fresh_postgres_schema(),
                                     "TOKEND_POSTGRES_CONNECTIONS=2",
                                     "TOKEND_BOOTSTRAP_TOKEN=" + admin,
                                     "TOKEND_MAX_TOKENS_PER_USER=0"};
  std::vector<std::unique_ptr<test::tokend_server>> instances;
  instances.push_back(std::make_unique<test::tokend_server>(box, instance(0, env)));
  instances.push_back(std::make_unique<test::tokend_server>(box, instance(0, env)));
  const std::uint16_t ports[2] = {instances[0]->api_port(), instances[1]->api_port()};
  const std::uint16_t nginx_port = test::free_loopback_port();
  test::nginx_server nginx(box.root() / "nginx", nginx_http_block(nginx_port, ports[0], ports[1]),
                           nginx_port);

  tally t;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < creators + listers; ++i) {
    clients.emplace_back([&, i] { client(nginx_port, admin, i < creators, stop, t); });
  }

  std::string round_failure;
  for (int round = 0; round < rounds && round_failure.empty(); ++round) {
    for (int i = 0; i < 2 && round_failure.empty(); ++i) {
      const auto status = instances[i]->terminate(10s);
      if (!status || !status->success()) {
        round_failure = "instance " + std::to_string(i) + " did not drain and exit 0: " +
                        (status ? status->describe() : std::string("still running"));
        break;
      }
      instances[i].reset();
      instances[i] = std::make_unique<test::tokend_server>(box, instance(ports[i], env));
      // Back in nginx's rotation before the other one goes: a rolling restart waits for that.
      const auto deadline = steady::now() + 10s;
      while (answered(instances[i]->admin_port()) < 20 && steady::now() < deadline)
        std::this_thread::sleep_for(5ms);
      if (answered(instances[i]->admin_port()) < 20) {
        round_failure = "the replacement of instance " + std::to_string(i) + " got no traffic through nginx";
      }
    }
  }
  stop.store(true);
  for (auto& c : clients) c.join();

  const auto sent = t.creates.load() + t.lists.load() + t.failures.load();
  std::cout << "rolling restart behind nginx: " << rounds << " rounds, requests " << sent << " (creates "
            << t.creates.load() << ", lists " << t.lists.load() << "), failures " << t.failures.load()
            << "\n";
  BOOST_TEST_MESSAGE("requests " << sent << ", failures " << t.failures.load());
  BOOST_TEST(round_failure.empty(), round_failure);
  std::string nginx_log = nginx.error_log();  // its request lines carry the key: not in the test's output
  for (std::size_t at; (at = nginx_log.find(admin)) != std::string::npos;)
    nginx_log.replace(at, admin.size(), "<key>");
  BOOST_TEST(t.failures.load() == 0u, "failed requests through nginx; nginx error log:\n" << nginx_log);
  for (const auto& f : t.first_failures) BOOST_TEST_MESSAGE("failure: " << f);
  for (const auto& f : t.first_failures) std::cout << "failure: " << f << "\n";
  BOOST_TEST(t.creates.load() >= 100u, "too little load to mean anything");
  BOOST_TEST(t.lists.load() >= 20u, "too little load to mean anything");
  BOOST_TEST((steady::now() - test_started < test_budget), "the test took longer than its budget");
}

BOOST_AUTO_TEST_SUITE_END()
