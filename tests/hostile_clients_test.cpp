// Hostile clients over real sockets (an app on 127.0.0.1:0 over the in-memory store): slowloris,
// hundreds of idle connections, oversized headers and bodies, request-smuggling framings,
// malformed percent-encoding and random bytes, all at once, while well-behaved clients measure
// their latency. Every hostile request is answered 4xx or closed, never 5xx; the good clients are
// all served, each request within a generous bound. And the connection cap (--max-connections):
// beyond it new connections are closed at once, unanswered, and served again once below it. And
// request framing, each class in several shapes: chunk extensions and trailers bounded (refused
// long before a flood ends), trailer fields never header fields, transfer codings other than
// chunked and HTTP/1.0 with Transfer-Encoding refused with one answer and a close, and several
// Authorization headers a 401.
#define BOOST_TEST_MODULE hostile_clients_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "core/token.hpp"
#include "server/app.hpp"
#include "server/config.hpp"
#include "storage/memory_store.hpp"
#include "support/http_client.hpp"
#include "support/in_process_app.hpp"
#include "support/metrics_text.hpp"
#include "support/temp_dir.hpp"
#include "support/timing.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
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

// An app with one key for user 1, stored before it starts.
class hostile_target {
 public:
  explicit hostile_target(std::size_t max_connections) : key(core::generate_key()) {
    server::config cfg;
    cfg.max_body_bytes = 16 * 1024;
    cfg.max_header_bytes = 8 * 1024;
    cfg.request_timeout = request_timeout;
    cfg.idle_timeout = 30s;  // idle attackers stay for the whole window
    cfg.max_connections = max_connections;
    auto store = storage::make_memory_store();
    test::store_record(*store, core::make_token_record(key, 1, "bootstrap", "admin", 1'700'000'000), 5s);
    app_.emplace(cfg, dir_.path(), std::move(store));
    port = app_->api_port();
    admin_port = app_->admin_port();
  }

  // A figure from /metrics: the sum of every series whose line starts with `prefix`.
  [[nodiscard]] long long metric(const std::string& prefix) const {
    return std::max(0ll, tokend::test::metric_in(app_->app().metrics_text(), prefix));
  }

  std::string key;
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;

 private:
  test::temp_dir dir_;
  std::optional<test::in_process_app> app_;
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
      {"oversized header",
       "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n"},
      {"many headers", "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + many_headers + "\r\n"},
      {"oversized target",
       "GET " + path + "&pad=" + std::string(32 * 1024, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"oversized body",
       "POST " + path +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n" +
           std::string(200000, ' ')},
      {"oversized chunk",
       "POST " + path +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
           "ffffffffff\r\n" +
           std::string(1000, 'x')},
      {"conflicting Content-Length",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(create.size()) + "\r\nContent-Length: 3\r\n\r\n" + create},
      {"Content-Length list",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(create.size()) + ", 3\r\n\r\n" + create},
      {"Content-Length with Transfer-Encoding",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(create.size() + 5) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + create},
      {"bad percent-encoding in token",
       "GET /api/v2/tokens?token=%zz" + key.substr(4) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"truncated percent-encoding",
       "GET /api/v2/tokens?token=" + key + "% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"percent-encoded NUL",
       "GET /api/v2/tokens?token=%00" + key + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"bad percent-encoding in path",
       "GET /api/v2/tok%G1ens?token=" + key + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"bare percent query", "GET /api/v2/tokens?%%%=%&& HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"overlong UTF-8 in query",
       "GET /api/v2/tokens?token=%C0%AF%E0%80%80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
      {"NUL in header", std::string("GET /api/v2/tokens HTTP/1.1\r\nHost: x\r\nX-A: a") + '\0' + "b\r\n\r\n"},
      {"header without colon", "GET /api/v2/tokens HTTP/1.1\r\nHost x\r\n\r\n"},
      {"bad version", "GET /api/v2/tokens HTTP/9.9\r\nHost: x\r\n\r\n"},
      {"bad method", "G\x01T /api/v2/tokens HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"bad chunk size", "POST " + path +
                             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: "
                             "chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
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
void attack(std::uint16_t port, const std::string& key, std::uint32_t seed, steady::time_point until,
            tally& t, std::atomic<int>& sent) {
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
    if (!v.back().c->write_raw("GET /api/v2/tokens HTTP/1.1\r\nHost: x\r\n"))
      t.problem("slowloris: first write failed");
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
    if (!s.closed)
      t.problem("slowloris connection still open after " +
                std::to_string(test::ms(steady::now() - s.started)) + " ms");
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
        const auto took = test::ms(steady::now() - started);
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
  BOOST_TEST(slow_closed.load() == slow_connections, slow_closed.load()
                                                         << " slowloris connections closed in time");
  BOOST_TEST(hostile_sent.load() > 50, hostile_sent.load() << " hostile requests");
  BOOST_TEST(served.load() > 100, served.load() << " good requests served");
  BOOST_TEST(worst_ms.load() < test::ms(good_latency_bound),
             "slowest good request: " << worst_ms.load() << " ms");
  BOOST_TEST_MESSAGE(hostile_sent.load() << " hostile requests, " << served.load()
                                         << " good requests, slowest " << worst_ms.load() << " ms");

  // The idle connections are still there (the idle timeout is longer than the attack), and no
  // request of any kind was answered 5xx.
  BOOST_TEST(target.metric("tokend_open_connections ") >= 300);
  BOOST_TEST(target.metric("tokend_http_requests_total{route=\"create\",status=\"5") +
                 target.metric("tokend_http_requests_total{route=\"list\",status=\"5") +
                 target.metric("tokend_http_requests_total{route=\"delete\",status=\"5") +
                 target.metric("tokend_http_requests_total{route=\"other\",status=\"5") ==
             0);
  BOOST_TEST(test::request(target.port, http::verb::get, "/api/v2/tokens?token=" + target.key).status ==
             200u);
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_cap_are_closed_at_once) {
  constexpr std::size_t cap = 20;
  hostile_target target(cap);
  std::vector<std::unique_ptr<test::connection>> held;
  for (std::size_t i = 0; i < cap; ++i) {
    held.push_back(std::make_unique<test::connection>(target.port, 2s));
    // Served, so certainly accepted and counted.
    BOOST_REQUIRE_EQUAL(held.back()->request(http::verb::get, "/api/v2/tokens?token=" + target.key).status,
                        200u);
  }
  BOOST_TEST(target.metric("tokend_open_connections ") == static_cast<long long>(cap));

  // One more: the kernel completes the handshake, tokend closes it unanswered, promptly.
  const auto started = steady::now();
  test::connection extra(target.port, 2s);
  const std::string received =
      extra.raw("GET /api/v2/tokens?token=" + target.key + " HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
  BOOST_TEST(received.empty(), "an over-cap connection got an answer: " << received.substr(0, 100));
  BOOST_TEST(test::ms(steady::now() - started) < 1000,
             "closing took " << test::ms(steady::now() - started) << " ms");
  BOOST_TEST(target.metric("tokend_http_connections_refused_total ") == 1);
  // The admin listener has a cap of its own: a full API does not take its connections.
  BOOST_TEST(test::request(target.admin_port, http::verb::get, "/healthz").status == 200u);
  // The held connections are still served.
  BOOST_TEST(held.front()->request(http::verb::get, "/api/v2/tokens?token=" + target.key).status == 200u);

  // Below the cap again, a new connection is served.
  held.pop_back();
  const auto deadline = steady::now() + 5s;
  while (target.metric("tokend_open_connections ") >= static_cast<long long>(cap) &&
         steady::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  BOOST_REQUIRE(target.metric("tokend_open_connections ") == static_cast<long long>(cap - 1));
  test::connection again(target.port, 2s);
  BOOST_TEST(again.request(http::verb::get, "/api/v2/tokens?token=" + target.key).status == 200u);
}

// ---------------------------------------------------------------------------------------------
// Request framing: chunk extensions, trailers, transfer codings, HTTP/1.0 with chunked, and
// several Authorization headers. Each class is tried in several shapes.

// What one flooding connection saw: every byte the server sent, how much of the flood it took
// before answering or closing, and whether it closed the connection.
struct flood_result {
  std::string received;
  std::size_t sent = 0;
  bool closed = false;
};

// Sends `head`, then `piece` over and over (up to `total` bytes) until the server answers or stops
// reading, then `tail` if the whole flood went through; reads everything the server sends until it
// closes. Reading runs beside writing, so an answer sent early is seen before any reset.
flood_result flood(std::uint16_t port, const std::string& head, const std::string& piece, std::size_t total,
                   const std::string& tail = {}) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  net::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  // A small send buffer, so that what was sent is close to what the server took.
  socket.set_option(net::socket_base::send_buffer_size(64 * 1024));
  flood_result r;
  std::array<char, 4096> in{};
  bool reading = true;
  std::function<void()> read = [&] {
    socket.async_read_some(net::buffer(in), [&](boost::system::error_code ec, std::size_t n) {
      r.received.append(in.data(), n);
      if (ec) {
        r.closed = ec == net::error::eof || ec == net::error::connection_reset;
        reading = false;
        return;
      }
      read();
    });
  };
  std::function<void()> write_piece = [&] {
    if (!r.received.empty() || !reading) return;  // answered or closed: a real client stops here
    if (r.sent >= total) {
      net::async_write(socket, net::buffer(tail), [](boost::system::error_code, std::size_t) {});
      return;
    }
    net::async_write(socket, net::buffer(piece), [&](boost::system::error_code ec, std::size_t) {
      if (ec) return;
      r.sent += piece.size();
      write_piece();
    });
  };
  net::async_write(socket, net::buffer(head), [&](boost::system::error_code ec, std::size_t) {
    if (!ec) write_piece();
  });
  read();
  io.run_for(15s);
  return r;
}

// How many responses start in what a connection received (a status line at a line start).
int responses_in(const std::string& received) {
  int n = received.starts_with("HTTP/1.") ? 1 : 0;
  for (auto at = received.find("\r\nHTTP/1."); at != std::string::npos;
       at = received.find("\r\nHTTP/1.", at + 1)) {
    ++n;
  }
  return n;
}

constexpr std::size_t flood_bytes = 8u << 20;
// Well before the whole flood: what the server may read past its bound, its lingering discard
// (1 MiB) and the socket buffers of both sides.
constexpr std::size_t flood_cutoff = 2u << 20;

std::string chunked_post_head(const std::string& target) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
}

// Checks that a flood was refused with `status` and the connection closed, long before its end.
void check_refused_early(const flood_result& r, unsigned status, const std::string& shape) {
  BOOST_TEST(status_of(r.received) == status, shape << ": answered " << r.received.substr(0, 120));
  BOOST_TEST(responses_in(r.received) == 1, shape << ": " << responses_in(r.received) << " responses");
  BOOST_TEST(r.sent < flood_cutoff, shape << ": the server read " << r.sent << " bytes of the flood");
  BOOST_TEST_MESSAGE(shape << ": refused after " << r.sent << " bytes");
  BOOST_TEST(r.closed, shape << ": the connection stayed open");
}

// A header field that never ends, streamed: refused at the header bound, not at the deadline.
BOOST_AUTO_TEST_CASE(a_header_field_that_does_not_end_is_bounded) {
  hostile_target target(100);
  const std::string fill(64 * 1024, 'h');
  check_refused_early(
      flood(target.port, "GET /api/v2/tokens HTTP/1.1\r\nHost: x\r\nX-Pad: ", fill, flood_bytes, "\r\n\r\n"),
      431, "api listener");
  check_refused_early(
      flood(target.admin_port, "GET /healthz HTTP/1.1\r\nX-Pad: ", fill, flood_bytes, "\r\n\r\n"), 431,
      "admin listener");
}

BOOST_AUTO_TEST_CASE(chunk_extensions_are_bounded) {
  hostile_target target(100);
  const std::string head = chunked_post_head("/api/v2/tokens?token=" + target.key);
  const std::string fill(64 * 1024, 'e');
  // One chunk-size line that never ends, in three shapes of extension.
  check_refused_early(flood(target.port, head + "5;", fill, flood_bytes, "\r\nhello\r\n0\r\n\r\n"), 400,
                      "name");
  check_refused_early(flood(target.port, head + "5;ext=", fill, flood_bytes, "\r\nhello\r\n0\r\n\r\n"), 400,
                      "value");
  check_refused_early(flood(target.port, head + "5;ext=\"", fill, flood_bytes, "\"\r\nhello\r\n0\r\n\r\n"),
                      400, "quoted value");
  // On the last chunk.
  check_refused_early(flood(target.port, head + "5\r\nhello\r\n0;", fill, flood_bytes, "\r\n\r\n"), 400,
                      "last chunk");
  // Many chunks, each line short, whose extensions add up.
  std::string many;
  while (many.size() < 64 * 1024) many += "1;e=" + std::string(100, 'x') + "\r\n \r\n";
  check_refused_early(flood(target.port, head, many, flood_bytes, "0\r\n\r\n"), 400, "many chunks");
  // The admin listener reads requests the same way.
  check_refused_early(flood(target.admin_port, chunked_post_head("/healthz") + "5;", fill, flood_bytes,
                            "\r\nhello\r\n0\r\n\r\n"),
                      400, "admin listener");
  // A few extensions within the bound are still fine.
  test::connection c(target.port);
  const std::string body = R"({"type":"admin","description":"ext"})";
  std::ostringstream rest;
  rest << std::hex << body.size() - 16;
  BOOST_REQUIRE(c.write_raw(head + "10;a=b;c=\"d\"\r\n" + body.substr(0, 16) + "\r\n" + rest.str() +
                            ";x\r\n" + body.substr(16) + "\r\n0;y=z\r\n\r\n"));
  BOOST_TEST(c.read_response().status == 200u);
}

BOOST_AUTO_TEST_CASE(trailers_are_bounded) {
  hostile_target target(100);
  const std::string head = chunked_post_head("/api/v2/tokens?token=" + target.key) + "2\r\n{}\r\n0\r\n";
  // One trailer field that never ends.
  check_refused_early(
      flood(target.port, head + "X-Trailer: ", std::string(64 * 1024, 't'), flood_bytes, "\r\n\r\n"), 431,
      "one long field");
  // Many short fields.
  std::string fields;
  for (int i = 0; fields.size() < 64 * 1024; ++i) fields += "X-T" + std::to_string(i) + ": v\r\n";
  check_refused_early(flood(target.port, head, fields, flood_bytes, "\r\n"), 431, "many fields");
  // Past the bound in one write, complete: the parser sees the whole section at once.
  test::connection c(target.port);
  std::string at_once;
  while (at_once.size() < 12 * 1024) at_once += "X-Pad: " + std::string(100, 'p') + "\r\n";
  const std::string received = c.raw(head + at_once + "\r\n", 1500ms);
  BOOST_TEST(status_of(received) == 431u, received.substr(0, 200));
}

// Trailer fields never act as header fields: not as a key, a request id, a content type or a
// Connection option. They are read (within their bound) and dropped.
BOOST_AUTO_TEST_CASE(trailer_fields_are_not_header_fields) {
  hostile_target target(100);
  const std::string body = R"({"type":"admin","description":"trailer"})";
  const auto chunked = [&](const std::string& target_path, const std::string& headers,
                           const std::string& trailers) {
    std::ostringstream hex;
    hex << std::hex << body.size();
    return "POST " + target_path + " HTTP/1.1\r\nHost: x\r\n" + headers +
           "Transfer-Encoding: chunked\r\n\r\n" + hex.str() + "\r\n" + body + "\r\n0\r\n" + trailers + "\r\n";
  };
  const std::string with_key = "/api/v2/tokens?token=" + target.key;
  const auto tokens = [&] {
    return test::request(target.port, http::verb::get, with_key).json().at("tokens").as_array().size();
  };
  const std::size_t before = tokens();

  // A key in a trailer does not authenticate, whatever its case or the request's other fields.
  for (const std::string& trailer :
       {"Authorization: Bearer " + target.key + "\r\n", "authorization: bearer " + target.key + "\r\n",
        "X-A: 1\r\nAuthorization: Bearer " + target.key + "\r\nX-B: 2\r\n"}) {
    test::connection c(target.port);
    BOOST_REQUIRE(c.write_raw(chunked("/api/v2/tokens", "Content-Type: application/json\r\n", trailer)));
    BOOST_TEST(c.read_response().status == 401u);
  }
  BOOST_TEST(tokens() == before, "a trailer key created a token");

  {  // A request id in a trailer is not the request's.
    test::connection c(target.port);
    BOOST_REQUIRE(c.write_raw(chunked(with_key, "", "X-Request-Id: from-the-trailer\r\n")));
    const auto r = c.read_response();
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.header("x-request-id") != "from-the-trailer");
  }
  {  // Nor is a content type (a request without one is taken as JSON).
    test::connection c(target.port);
    BOOST_REQUIRE(c.write_raw(chunked(with_key, "", "Content-Type: text/plain\r\n")));
    BOOST_TEST(c.read_response().status == 200u);
  }
  {  // Nor a Connection option: the connection stays open for the next request.
    test::connection c(target.port);
    BOOST_REQUIRE(c.write_raw(chunked(with_key, "", "Connection: close\r\n")));
    const auto r = c.read_response();
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.keep_alive);
    BOOST_TEST(c.request(http::verb::get, with_key).status == 200u);
  }
}

// A transfer coding tokend does not read is refused and the connection closed: the body is never
// read as a second request. Each body here is a complete request of its own.
BOOST_AUTO_TEST_CASE(transfer_codings_other_than_chunked_are_refused) {
  hostile_target target(100);
  const std::string smuggled = "GET /api/v2/tokens?token=" + target.key + " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::ostringstream hex;
  hex << std::hex << smuggled.size();
  const std::string as_chunks = hex.str() + "\r\n" + smuggled + "\r\n0\r\n\r\n";
  const struct {
    std::string headers;
    std::string body;
    unsigned status;
  } shapes[] = {
      {"Transfer-Encoding: gzip\r\n", smuggled, 400},
      {"Transfer-Encoding: identity\r\n", smuggled, 400},
      {"Transfer-Encoding: x-unknown\r\n", smuggled, 400},
      {"Transfer-Encoding: chunked, identity\r\n", smuggled, 400},
      {"Transfer-Encoding: gzip, chunked\r\n", as_chunks, 400},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", as_chunks, 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", smuggled, 400},
      {"Transfer-Encoding: \r\n", smuggled, 400},
      {"Transfer-Encoding: ,\r\n", smuggled, 400},
      {"Transfer-Encoding: , chunked\r\n", as_chunks, 400},
      {"Transfer-Encoding: chunked, chunked\r\n", as_chunks, 400},
      {"Transfer-Encoding: chunked;q=1\r\n", as_chunks, 400},
      {"Transfer-Encoding: \"chunked\"\r\n", as_chunks, 400},
      {"Transfer-Encoding: gzip\r\nContent-Length: " + std::to_string(smuggled.size()) + "\r\n", smuggled,
       400},
  };
  for (const auto& s : shapes) {
    test::connection c(target.port);
    const std::string received =
        c.raw("POST /api/v2/tokens?token=" + target.key +
                  " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + s.headers + "\r\n" + s.body,
              1500ms);
    BOOST_TEST(status_of(received) == s.status, s.headers << ": " << received.substr(0, 200));
    BOOST_TEST(responses_in(received) == 1, s.headers << ": " << responses_in(received) << " responses");
    BOOST_TEST(received.find("Connection: close") != std::string::npos, s.headers);
    BOOST_TEST(received.find("\"success\":false") != std::string::npos, s.headers);
  }
  // `chunked` alone, in any case, is read, and the connection serves the next request.
  for (const char* te : {"chunked", "Chunked", "CHUNKED"}) {
    test::connection c(target.port);
    const std::string body = R"({"type":"admin","description":"te"})";
    std::ostringstream len;
    len << std::hex << body.size();
    BOOST_REQUIRE(c.write_raw("POST /api/v2/tokens?token=" + target.key +
                              " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + std::string(te) + "\r\n\r\n" +
                              len.str() + "\r\n" + body + "\r\n0\r\n\r\n"));
    BOOST_TEST(c.read_response().status == 200u, te);
    BOOST_TEST(c.request(http::verb::get, "/api/v2/tokens?token=" + target.key).status == 200u, te);
  }
}

// HTTP/1.0 has no chunked coding: a Transfer-Encoding there is faulty framing, even with
// keep-alive asked for; what follows on the connection is never read as a request.
BOOST_AUTO_TEST_CASE(http10_with_transfer_encoding_closes) {
  hostile_target target(100);
  const std::string next =
      "GET /api/v2/tokens?token=" + target.key + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  const std::string body = R"({"type":"admin","description":"one"})";
  std::ostringstream hex;
  hex << std::hex << body.size();
  for (const char* headers :
       {"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n",
        "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: chunked\r\n"}) {
    test::connection c(target.port);
    const std::string received =
        c.raw("POST /api/v2/tokens?token=" + target.key + " HTTP/1.0\r\nContent-Type: application/json\r\n" +
                  std::string(headers) + "\r\n" + hex.str() + "\r\n" + body + "\r\n0\r\n\r\n" + next,
              1500ms);
    BOOST_TEST(status_of(received) == 400u, headers << received.substr(0, 200));
    BOOST_TEST(responses_in(received) == 1, headers << ": " << responses_in(received) << " responses");
  }
  // Without a body framing, HTTP/1.0 keep-alive still works.
  test::connection c(target.port);
  BOOST_REQUIRE(c.write_raw(next));
  BOOST_TEST(c.read_response().status == 200u);
  BOOST_REQUIRE(c.write_raw(next));
  BOOST_TEST(c.read_response().status == 200u);
}

// Several Authorization headers, or one of another scheme beside a key, are ambiguous: 401.
BOOST_AUTO_TEST_CASE(ambiguous_authorization_is_401) {
  hostile_target target(100);
  const std::string other = core::generate_key();
  const std::string basic = "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n";
  const std::string bearer = "Authorization: Bearer " + target.key + "\r\n";
  const struct {
    std::string query;
    std::string headers;
    unsigned status;
  } shapes[] = {
      {"", bearer, 200},
      {"?token=" + target.key, bearer, 200},
      {"", bearer + bearer, 401},
      {"", bearer + "Authorization: Bearer " + other + "\r\n", 401},
      {"", "Authorization: Bearer " + other + "\r\n" + bearer, 401},
      {"", basic + bearer, 401},
      {"", bearer + basic, 401},
      {"?token=" + target.key, basic, 401},
      {"?token=" + target.key, basic + "Authorization: Bearer " + other + "\r\n", 401},
      {"?token=" + other, basic + bearer, 401},
      {"?token=" + target.key, "Authorization: Bearer\r\n", 401},
  };
  test::connection c(target.port);
  for (const auto& s : shapes) {
    BOOST_REQUIRE(
        c.write_raw("GET /api/v2/tokens" + s.query + " HTTP/1.1\r\nHost: x\r\n" + s.headers + "\r\n"));
    const auto r = c.read_response();
    BOOST_TEST(r.status == s.status, s.query.size()
                                         << " " << std::count(s.headers.begin(), s.headers.end(), '\n')
                                         << " headers: " << r.status << " " << r.error);
  }
}

}  // namespace
