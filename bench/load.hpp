// The load engine of tokend-bench: what to send (load_config), running it (run_load) and what came
// back (load_result). Keep-alive HTTP/1.1 connections spread over io threads, closed loop (send when
// a response arrives) or open loop (send on a fixed schedule, latency measured from the scheduled
// time so a stalled server cannot hide its stall: the "coordinated omission" correction of wrk2).
#pragma once

#include "bench/histogram.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokend::bench {

// verify: the gateway check /verify with a valid key; verify_fail: the same with an unknown key.
enum class request_kind : std::uint8_t { create, list, authfail, verify, verify_fail };
inline constexpr std::size_t request_kind_count = 5;
[[nodiscard]] std::string_view to_string(request_kind k) noexcept;

// Failures below HTTP: they are not responses, so they never enter the status counts.
enum class transport_error : std::uint8_t {
  connect_refused,
  connect_failed,  // anything else while connecting (unreachable, no route, ...)
  reset,           // connection reset / broken pipe with requests outstanding
  timeout,         // no response (or no connect) within --timeout
  eof,             // the server closed while requests were outstanding, without Connection: close
  bad_response,    // unparseable HTTP or a response nobody asked for
  other,
};
inline constexpr std::size_t transport_error_count = 7;
[[nodiscard]] std::string_view to_string(transport_error e) noexcept;

struct load_config {
  std::string address = "127.0.0.1";  // numeric IPv4 or IPv6, or a host name (see resolve_target)
  std::uint16_t port = 8080;
  std::string host_header = "127.0.0.1:8080";
  std::string token;
  std::string create_token;  // key for creates when set, so creates need not grow the listed user's tokens
  std::array<unsigned, request_kind_count> mix{0, 1, 0, 0, 0};  // weights, indexed by request_kind
  // Request shape overrides for every kind: the target (the key of create, list and authfail is
  // still appended as ?token= / &token=), the method, and extra "Name: value" header lines.
  std::string path;
  std::string method;
  std::vector<std::string> headers;
  std::string body;  // of every request when set (as application/json), create's included
  std::size_t connections = 64;
  std::size_t threads = 2;
  std::chrono::nanoseconds duration{0};  // 0: no time limit (then requests > 0)
  std::uint64_t requests = 0;            // 0: no request limit (then duration > 0)
  std::chrono::nanoseconds warmup{0};
  std::size_t pipeline = 1;
  double rate = 0;  // requests/s in total; 0: closed loop
  std::chrono::nanoseconds timeout = std::chrono::seconds{5};
};

struct kind_result {
  std::uint64_t responses = 0;
  std::uint64_t successes = 0;
  histogram latency;
};

// One second of the measured window: what came back in it, for the report's throughput plot.
struct second_counts {
  std::uint64_t responses = 0;         // every HTTP response, whatever its status
  std::uint64_t non_2xx = 0;           // of those, not 2xx
  std::uint64_t transport_errors = 0;  // requests lost below HTTP (connect, reset, timeout...)
};

struct load_result {
  std::chrono::nanoseconds elapsed{0};  // the measured window (after warmup)
  std::uint64_t responses = 0;          // every HTTP response, whatever its status
  std::uint64_t successes = 0;          // 2xx only
  histogram latency;                    // nanoseconds
  std::array<kind_result, request_kind_count> by_kind;
  std::array<std::uint64_t, 600> status{};  // index: status code; [0] holds codes >= 600
  std::array<std::uint64_t, transport_error_count> errors{};
  std::uint64_t reconnects = 0;  // connections re-established after the first one
  bool ever_connected = false;
  std::vector<second_counts> per_second;  // [i]: from i to i+1 s after the window opened

  [[nodiscard]] std::uint64_t transport_errors() const noexcept;
  // Adds one thread's series to this one, second by second.
  void merge_seconds(const std::vector<second_counts>& other);
};

// A once-a-second look at a running load, for a progress line.
struct load_progress {
  std::chrono::nanoseconds since_start{0};
  bool warming_up = false;
  std::uint64_t responses = 0;  // counted so far (after warmup)
  std::uint64_t successes = 0;
  std::uint64_t errors = 0;
};

// The bytes of one request of each kind, as they go on the wire.
[[nodiscard]] std::array<std::string, request_kind_count> serialize_requests(const load_config& cfg);

// Resolves cfg.address when it is a host name (a cluster Service name, localhost...) to the first
// address the resolver gives, once, before the run: the error text when it does not resolve.
[[nodiscard]] std::optional<std::string> resolve_target(load_config& cfg);

// One blocking connect with cfg.timeout: the error text when the target cannot be reached at all.
[[nodiscard]] std::optional<std::string> probe_connect(const load_config& cfg);

// Runs the load to completion on cfg.threads new threads; the calling thread only waits and calls
// on_progress (if set) about once per second.
[[nodiscard]] load_result run_load(const load_config& cfg,
                                   const std::function<void(const load_progress&)>& on_progress);

}  // namespace tokend::bench
