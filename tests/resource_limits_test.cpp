// Resource bounds of the service: the connection caps fit the file-descriptor limit (the real
// binary under a low RLIMIT_NOFILE), the admin listener's own cap, and the bound on bytes of list
// answers in flight (in-process). Plus the pure pieces: the descriptor plan, the accept back-off
// and the response budget.
#define BOOST_TEST_MODULE resource_limits_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "core/token.hpp"
#include "server/app.hpp"
#include "server/config.hpp"
#include "server/fd_limits.hpp"
#include "server/response_budget.hpp"
#include "storage/memory_store.hpp"
#include "support/http_client.hpp"
#include "support/in_process_app.hpp"
#include "support/metrics_text.hpp"
#include "support/temp_dir.hpp"
#include "support/timing.hpp"
#include "support/tokend_server.hpp"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace server = tokend::server;
namespace storage = tokend::storage;
namespace core = tokend::core;
namespace test = tokend::test;
namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

using tokend::test::metric_in;

// True when the peer has closed `s` (EOF or reset) within `wait`; false when it is still open.
bool closed_within(tcp::socket& s, std::chrono::milliseconds wait) {
  pollfd p{s.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
  char byte = 0;
  return ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

// This test process opens hundreds of sockets: its own soft limit may be lower than that.
void raise_own_descriptor_limit() { (void)server::raise_descriptor_limit(); }

// ---------------------------------------------------------------------------------------------
// The descriptor plan (pure).

BOOST_AUTO_TEST_SUITE(descriptor_plan)

server::config rocksdb_config(std::size_t max_connections, std::size_t threads) {
  server::config cfg;
  cfg.max_connections = max_connections;
  cfg.threads = threads;
  return cfg;
}

BOOST_AUTO_TEST_CASE(a_cap_that_does_not_fit_is_lowered_below_the_limit_by_the_reserve) {
  const auto cfg = rocksdb_config(10'000, 2);
  const auto plan = server::plan_descriptors(1024, cfg);
  BOOST_TEST(plan.clamped);
  BOOST_TEST(plan.rocksdb_max_open_files == 256);
  // Everything that is not an API connection: the base, the threads, RocksDB's files, the admin cap.
  BOOST_TEST(plan.reserved == server::base_descriptors + 2 * server::descriptors_per_thread + 256 +
                                  server::rocksdb_other_files + cfg.admin_max_connections);
  BOOST_TEST(plan.max_connections == 1024 - plan.reserved);
  BOOST_TEST(plan.admin_max_connections == cfg.admin_max_connections);
}

BOOST_AUTO_TEST_CASE(a_cap_that_fits_is_kept) {
  const auto plan = server::plan_descriptors(1'048'576, rocksdb_config(10'000, 8));
  BOOST_TEST(!plan.clamped);
  BOOST_TEST(plan.max_connections == 10'000u);
  BOOST_TEST(plan.rocksdb_max_open_files == 1024);  // the table cache's bound is itself bounded
}

BOOST_AUTO_TEST_CASE(an_unlimited_limit_keeps_the_cap) {
  const auto unlimited = std::numeric_limits<std::uint64_t>::max();
  const auto plan = server::plan_descriptors(unlimited, rocksdb_config(500'000, 4));
  BOOST_TEST(!plan.clamped);
  BOOST_TEST(plan.max_connections == 500'000u);
}

BOOST_AUTO_TEST_CASE(postgres_reserves_its_pool_instead_of_table_files) {
  auto cfg = rocksdb_config(10'000, 2);
  cfg.store = server::store_kind::postgres;
  cfg.postgres_connections = 8;
  const auto plan = server::plan_descriptors(1024, cfg);
  BOOST_TEST(plan.rocksdb_max_open_files == -1);
  BOOST_TEST(plan.reserved < 1024u - 900u);  // a pool of 8 needs far fewer than RocksDB's files
  BOOST_TEST(plan.reserved >= server::base_descriptors + 8 + 1 + cfg.admin_max_connections);
  BOOST_TEST(plan.max_connections == 1024 - plan.reserved);
}

BOOST_AUTO_TEST_CASE(the_cap_never_exceeds_what_the_limit_leaves) {
  for (const std::uint64_t limit : {200ull, 256ull, 1000ull, 4096ull, 65536ull}) {
    for (const std::size_t configured : {16ul, 100ul, 10'000ul}) {
      for (const std::size_t threads : {1ul, 2ul, 16ul}) {
        const auto cfg = rocksdb_config(configured, threads);
        try {
          const auto plan = server::plan_descriptors(limit, cfg);
          BOOST_TEST(plan.max_connections + plan.reserved <= limit);
          BOOST_TEST(plan.max_connections <= configured);
          BOOST_TEST(plan.max_connections >= server::min_api_connections);
        } catch (const server::config_error&) {
          BOOST_TEST(limit < 400u, "refused a limit of " << limit);  // only limits too low to be useful
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_limit_too_low_for_any_api_connection_is_a_clear_start_up_error) {
  try {
    (void)server::plan_descriptors(100, rocksdb_config(10'000, 2));
    BOOST_FAIL("a limit of 100 was accepted");
  } catch (const server::config_error& e) {
    BOOST_TEST(std::string(e.what()).find("file-descriptor limit (100)") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(the_new_limits_are_flags_and_environment_variables) {
  const server::env_lookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "TOKEND_ADMIN_MAX_CONNECTIONS") return "8";
    if (name == "TOKEND_MAX_RESPONSE_BYTES_IN_FLIGHT") return "8388608";
    return std::nullopt;
  };
  const auto from_env = server::parse_config({}, env);
  BOOST_TEST(from_env.admin_max_connections == 8u);
  BOOST_TEST(from_env.max_response_bytes_in_flight == 8u << 20);
  const auto from_flags =
      server::parse_config({"--admin-max-connections", "5", "--max-response-bytes-in-flight=4194304"}, env);
  BOOST_TEST(from_flags.admin_max_connections == 5u);
  BOOST_TEST(from_flags.max_response_bytes_in_flight == 4u << 20);
  // Below two of the largest answers, a list could never be served.
  BOOST_CHECK_THROW((void)server::parse_config({"--max-response-bytes-in-flight", "65536"}, env),
                    server::config_error);
  BOOST_CHECK_THROW((void)server::parse_config({"--admin-max-connections", "0"}, env), server::config_error);
  const auto help = server::usage_text();
  for (const char* name : {"--admin-max-connections", "TOKEND_ADMIN_MAX_CONNECTIONS",
                           "--max-response-bytes-in-flight", "TOKEND_MAX_RESPONSE_BYTES_IN_FLIGHT"}) {
    BOOST_TEST(help.find(name) != std::string::npos, name << " is not in --help");
  }
}

BOOST_AUTO_TEST_CASE(accept_failures_back_off_and_are_logged_at_most_every_interval) {
  using backoff = server::accept_failure_backoff;
  backoff b;
  auto now = steady::now();
  const auto first = b.failed(now);
  BOOST_TEST(first.has_value());
  BOOST_TEST(*first == 0u);
  BOOST_TEST(test::ms(b.delay()) == test::ms(backoff::min_delay));
  // A storm: one line per interval, the pause doubling up to its maximum.
  int logged = 0;
  for (int i = 0; i < 1000; ++i) {
    now += b.delay();
    if (b.failed(now)) ++logged;
    BOOST_TEST(b.delay() <= backoff::max_delay);
  }
  BOOST_TEST(test::ms(b.delay()) == test::ms(backoff::max_delay));
  // ~1000 s of failures: about one line per 10 s, never one per failure.
  BOOST_TEST(logged <= 101);
  BOOST_TEST(logged >= 90);
  // The next logged line says how many were not.
  now += backoff::log_interval;
  const auto next = b.failed(now);
  BOOST_TEST(next.has_value());
  BOOST_TEST(*next > 0u);
  // After an accept succeeds, the pause starts small again.
  b.succeeded();
  (void)b.failed(now + 1ms);
  BOOST_TEST(test::ms(b.delay()) == test::ms(backoff::min_delay));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
// The response budget (pure).

BOOST_AUTO_TEST_SUITE(response_budget_unit)

BOOST_AUTO_TEST_CASE(shares_are_granted_up_to_the_limit_and_given_back) {
  server::response_budget budget(1000);
  auto a = budget.try_acquire(600);
  BOOST_TEST(static_cast<bool>(a));
  auto b = budget.try_acquire(500);
  BOOST_TEST(!b);
  BOOST_TEST(budget.refused() == 1u);
  auto c = budget.try_acquire(400);
  BOOST_TEST(static_cast<bool>(c));
  BOOST_TEST(budget.in_flight() == 1000u);
  BOOST_TEST(budget.exhausted());
  {
    const auto moved = std::move(a);
    BOOST_TEST(!a);
    BOOST_TEST(budget.in_flight() == 1000u);
  }
  BOOST_TEST(budget.in_flight() == 400u);
  c = server::response_budget::lease{};
  BOOST_TEST(budget.in_flight() == 0u);
  BOOST_TEST(budget.peak() == 1000u);
  BOOST_TEST(!budget.try_acquire(1001));  // larger than the whole budget
}

BOOST_AUTO_TEST_CASE(concurrent_shares_never_exceed_the_limit) {
  server::response_budget budget(10'000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&budget, t] {
      for (int i = 0; i < 20'000; ++i) {
        auto l = budget.try_acquire(static_cast<std::size_t>(1000 + 97 * ((i + t) % 40)));
      }
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(budget.peak() <= 10'000u);
  BOOST_TEST(budget.in_flight() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
// The real binary under a low descriptor limit.

BOOST_AUTO_TEST_SUITE(descriptor_limit)

// The effective caps from the "connection limits" line.
boost::json::object connection_limits_line(const std::string& out) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"connection limits\"") == std::string::npos) continue;
    return boost::json::parse(line).as_object();
  }
  return {};
}

// A figure from the admin listener's /metrics, or -1 when it does not answer within a second.
long long scrape(std::uint16_t admin_port, const std::string& prefix) {
  try {
    test::connection c(admin_port, 1s);
    const auto r = c.request(http::verb::get, "/metrics");
    return r.status == 200 ? metric_in(r.body, prefix) : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

BOOST_AUTO_TEST_CASE(past_the_descriptor_limit_connections_are_refused_and_probes_still_answer) {
  raise_own_descriptor_limit();
  test::sandbox box;
  const std::string key = core::generate_key();
  constexpr rlim_t limit = 256;
  test::tokend_server::options options;
  options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + key};
  options.limits.open_files = limit;
  test::tokend_server tokend(box, options);
  const auto limits = connection_limits_line(tokend.proc().stdout_text());
  BOOST_REQUIRE_MESSAGE(limits.contains("max_connections"), "no 'connection limits' line");
  const auto cap = static_cast<std::size_t>(limits.at("max_connections").to_number<std::int64_t>());
  BOOST_TEST(limits.at("fd_limit").to_number<std::int64_t>() == static_cast<std::int64_t>(limit));
  BOOST_TEST(limits.at("configured_max_connections").to_number<std::int64_t>() == 10'000);
  BOOST_TEST(limits.at("clamped_to_fd_limit").as_bool());
  BOOST_TEST(cap < limit);

  // More idle connections than there are descriptors. The kernel completes every handshake (the
  // listen backlog); tokend decides which it serves.
  const std::size_t total = limit + 44;
  net::io_context io;
  std::vector<tcp::socket> idle;
  for (std::size_t i = 0; i < total; ++i) {
    idle.emplace_back(io);
    idle.back().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), tokend.api_port()));
  }

  // (a) The cap engages first: exactly the connections past it are closed and counted as refused.
  const long long expected_refused = static_cast<long long>(total - cap);
  const auto deadline = steady::now() + 15s;
  long long refused = -1;
  while (steady::now() < deadline) {
    refused = scrape(tokend.admin_port(), "tokend_http_connections_refused_total ");
    if (refused >= expected_refused) break;
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(refused == expected_refused, "refused " << refused << ", expected " << expected_refused);
  BOOST_TEST(scrape(tokend.admin_port(), "tokend_open_connections ") == static_cast<long long>(cap));
  BOOST_TEST(closed_within(idle.back(), 2000ms), "a connection past the cap was left open");
  BOOST_TEST(!closed_within(idle.front(), 0ms), "a connection within the cap was closed");
  // No accept ever failed: the cap kept the descriptor table from filling up.
  BOOST_TEST(scrape(tokend.admin_port(), "tokend_accept_errors_total ") == 0);

  // (b) The admin listener answers promptly on a fresh connection.
  auto started = steady::now();
  {
    test::connection probe(tokend.admin_port(), 2s);
    BOOST_TEST(probe.request(http::verb::get, "/healthz").status == 200u);
  }
  BOOST_TEST(test::ms(steady::now() - started) < 1000,
             "/healthz took " << test::ms(steady::now() - started) << " ms");
  // A fresh API connection while full is closed at once, not left hanging in the backlog...
  tcp::socket extra(io);
  extra.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), tokend.api_port()));
  BOOST_TEST(closed_within(extra, 1000ms), "an over-cap API connection was not closed within a second");
  // ...and once some idle clients leave, a fresh connection is served promptly.
  for (std::size_t i = 0; i < 4; ++i) idle[i].close();
  const auto freed = steady::now() + 5s;
  while (scrape(tokend.admin_port(), "tokend_open_connections ") > static_cast<long long>(cap) - 4 &&
         steady::now() < freed) {
    std::this_thread::sleep_for(10ms);
  }
  started = steady::now();
  {
    test::connection fresh(tokend.api_port(), 2s);
    const auto r = fresh.request(http::verb::get, "/api/v2/tokens", {}, {{"Authorization", "Bearer " + key}});
    BOOST_TEST(r.status == 200u, "status " << r.status << " " << r.error);
  }
  const auto api_took = test::ms(steady::now() - started);
  BOOST_TEST(api_took < 1000, "the API request took " << api_took << " ms");

  // (c) No log storm: not one accept warning, on stdout (the log) or stderr.
  const auto all = box.all_output();
  std::size_t warnings = 0;
  for (auto at = all.find("accept failed"); at != std::string::npos; at = all.find("accept failed", at + 1)) {
    ++warnings;
  }
  BOOST_TEST(warnings == 0u, warnings << " accept warnings");
  const auto err = tokend.proc().stderr_text();
  BOOST_TEST(err.size() < 200u, "stderr: " << err.substr(0, 300));
  BOOST_TEST(tokend.terminate(10s).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
// In-process: the admin listener's cap and the response budget.

// An app on the memory store with the given records stored before it starts.
class target {
 public:
  target(const server::config& cfg, const std::vector<core::token_record>& records) {
    auto store = storage::make_memory_store();
    for (const auto& r : records) test::store_record(*store, r, 5s);
    app_.emplace(cfg, dir_.path(), std::move(store));
    port = app_->api_port();
    admin_port = app_->admin_port();
  }
  [[nodiscard]] long long metric(const std::string& prefix) const {
    return metric_in(app_->app().metrics_text(), prefix);
  }

  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;

 private:
  test::temp_dir dir_;
  std::optional<test::in_process_app> app_;
};

BOOST_AUTO_TEST_SUITE(admin_cap)

BOOST_AUTO_TEST_CASE(admin_connections_past_their_cap_are_closed_and_counted) {
  server::config cfg;
  cfg.admin_max_connections = 3;
  target t(cfg, {});
  net::io_context io;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 3; ++i) {
    idle.emplace_back(io);
    idle.back().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.admin_port));
  }
  tcp::socket extra(io);
  extra.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.admin_port));
  BOOST_TEST(closed_within(extra, 1000ms), "an admin connection past the cap stayed open");
  BOOST_TEST(t.metric("tokend_admin_connections_refused_total ") == 1);
  BOOST_TEST(!closed_within(idle.front(), 0ms));
  // A slot freed is a probe answered.
  idle.front().close();
  const auto deadline = steady::now() + 5s;
  unsigned status = 0;
  while (status != 200 && steady::now() < deadline) {
    try {
      test::connection probe(t.admin_port, 1s);
      status = probe.request(http::verb::get, "/healthz").status;
    } catch (const std::exception&) {
    }
  }
  BOOST_TEST(status == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(response_budget_integration)

// A response read asynchronously, so that many are read at once under one deadline.
struct pending {
  explicit pending(net::io_context& io) : socket(io) {}
  tcp::socket socket;
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  bool done = false;
  boost::system::error_code ec;
};

BOOST_AUTO_TEST_CASE(list_answers_in_flight_stay_within_the_budget) {
  // User 1 has 1000 tokens whose descriptions are 256 four-byte characters: each list answer is
  // over 1 MB. User 2 has one token.
  std::string description;
  for (int i = 0; i < 256; ++i) description += "\xF0\x9F\x98\x80";  // U+1F600
  std::vector<core::token_record> records;
  const std::string big_key = core::generate_key();
  records.push_back(core::make_token_record(big_key, 1, description, "admin", 1'700'000'000));
  for (int i = 1; i < 1000; ++i) {
    records.push_back(
        core::make_token_record(core::generate_key(), 1, description, "admin", 1'700'000'000 + i));
  }
  const std::string small_key = core::generate_key();
  records.push_back(core::make_token_record(small_key, 2, "small", "admin", 1'700'000'000));

  server::config cfg;
  cfg.max_response_bytes_in_flight = 4 << 20;  // the smallest the flag allows: three such answers
  target t(cfg, records);

  // Many clients ask for the big list and do not read yet, through receive windows too small for
  // an answer: the answers that are built stay in flight.
  constexpr std::size_t clients = 40;
  net::io_context io;
  std::vector<std::unique_ptr<pending>> requests;
  const std::string request =
      "GET /api/v2/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + big_key + "\r\n\r\n";
  for (std::size_t i = 0; i < clients; ++i) {
    auto p = std::make_unique<pending>(io);
    p->socket.open(tcp::v4());
    p->socket.set_option(net::socket_base::receive_buffer_size(4096));
    p->socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.port));
    net::write(p->socket, net::buffer(request));
    p->parser.body_limit(64 << 20);
    requests.push_back(std::move(p));
  }
  // Every request has been handled (answered or refused) once its route counts it.
  const auto handled_by = steady::now() + 20s;
  while (t.metric("tokend_http_requests_total{route=\"list\"") < static_cast<long long>(clients) &&
         steady::now() < handled_by) {
    std::this_thread::sleep_for(5ms);
  }
  BOOST_REQUIRE_EQUAL(t.metric("tokend_http_requests_total{route=\"list\""), static_cast<long long>(clients));
  const long long limit = t.metric("tokend_response_in_flight_limit_bytes ");
  BOOST_TEST(limit == 4ll << 20);
  // Answers were held at once (how many are still held now depends on how much of each the
  // kernel's send buffer, autotuned up to 4 MiB here, has taken), and never more than the budget.
  const long long peak = t.metric("tokend_response_in_flight_peak_bytes ");
  BOOST_TEST(peak > 1'000'000, "the answers in flight peaked at " << peak << " bytes");
  BOOST_TEST(peak <= limit);
  BOOST_TEST(t.metric("tokend_response_in_flight_bytes ") <= limit);
  BOOST_TEST(t.metric("tokend_response_budget_refusals_total ") > 0);

  // Meanwhile a small list and a create are served, promptly.
  auto started = steady::now();
  const auto small = test::request(t.port, http::verb::get, "/api/v2/tokens", {},
                                   {{"Authorization", "Bearer " + small_key}});
  BOOST_TEST(small.status == 200u, small.status << " " << small.body);
  const auto made = test::request(t.port, http::verb::post, "/api/v2/tokens",
                                  R"({"type":"admin","description":"during the flood"})",
                                  {{"Authorization", "Bearer " + small_key}});
  BOOST_TEST(made.status == 200u, made.status << " " << made.body);
  const auto small_took = test::ms(steady::now() - started);
  BOOST_TEST(small_took < 2000, "small requests took " << small_took << " ms");

  // Now read everything: each answer is the whole list or a clear 503 that says when to retry.
  for (auto& p : requests) {
    pending* raw = p.get();
    http::async_read(raw->socket, raw->buffer, raw->parser, [raw](boost::system::error_code ec, std::size_t) {
      raw->ec = ec;
      raw->done = true;
    });
  }
  io.run_for(30s);
  std::size_t ok = 0;
  std::size_t busy = 0;
  for (const auto& p : requests) {
    BOOST_REQUIRE_MESSAGE(p->done && !p->ec, "a response did not arrive: " << p->ec.message());
    const auto& res = p->parser.get();
    if (res.result_int() == 200) {
      ++ok;
      BOOST_TEST(boost::json::parse(res.body()).at("tokens").as_array().size() == 1000u);
    } else {
      ++busy;
      BOOST_TEST(res.result_int() == 503u);
      BOOST_TEST(res[http::field::retry_after] == "1");
      const auto body = boost::json::parse(res.body()).as_object();
      BOOST_TEST(body.at("success").as_bool() == false);
      BOOST_TEST(std::string(body.at("message").as_string()).find("retry later") != std::string::npos);
    }
  }
  BOOST_TEST_MESSAGE(ok << " answered, " << busy << " refused");
  BOOST_TEST(ok >= 1u);
  BOOST_TEST(busy >= 1u);
  BOOST_TEST(t.metric("tokend_response_in_flight_peak_bytes ") <= limit);
  // Every share came back once its answer was written.
  const auto released_by = steady::now() + 5s;
  while (t.metric("tokend_response_in_flight_bytes ") != 0 && steady::now() < released_by) {
    std::this_thread::sleep_for(5ms);
  }
  BOOST_TEST(t.metric("tokend_response_in_flight_bytes ") == 0);
  // With the budget free again, the big list is served.
  const auto again =
      test::request(t.port, http::verb::get, "/api/v2/tokens", {}, {{"Authorization", "Bearer " + big_key}});
  BOOST_TEST(again.status == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
