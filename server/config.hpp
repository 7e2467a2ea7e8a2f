// tokend's configuration: command-line flags, each with a TOKEND_* environment variable.
#pragma once

#include "core/rate_limit.hpp"
#include "server/log.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tokend::server {

struct endpoint_spec {
  std::string host;
  std::uint16_t port = 0;
};

enum class store_kind { rocksdb, postgres };

// Every member starts at its flag's default (config_flags.hpp); members without one start empty.
struct config {
  config();

  endpoint_spec listen;
  endpoint_spec admin_listen;
  std::string data_dir;
  store_kind store{};
  std::string postgres_url;  // libpq connection string; may hold a password: never logged
  std::string postgres_schema;
  std::size_t postgres_connections = 0;
  std::chrono::milliseconds revocation_poll{};  // bound on a missed cross-process revocation
  std::size_t threads = 0;                      // 0: one per core
  std::size_t cache_capacity = 0;
  std::size_t list_cache_tokens = 0;    // records of users' complete lists kept in memory
  std::size_t max_tokens_per_user = 0;  // tokens a user may hold unless an operator says otherwise; 0: none
  std::size_t max_body_bytes = 0;
  std::size_t max_header_bytes = 0;
  bool sync = false;
  std::size_t write_queue = 0;
  // Open API connections; beyond it a new connection is closed at once (see api_endpoint.hpp).
  std::size_t max_connections = 0;
  // Open admin connections (probes, scrapes): a cap of their own, so that /healthz answers while
  // the API is full. Both caps are lowered at start to fit the file-descriptor limit (fd_limits.hpp).
  std::size_t admin_max_connections = 0;
  // Bytes of list answers built and not yet written, all connections together; a list answer
  // that does not fit is refused with 503 (see response_budget.hpp).
  std::size_t max_response_bytes_in_flight = 0;
  std::chrono::milliseconds idle_timeout{};
  std::chrono::milliseconds request_timeout{};
  std::chrono::milliseconds drain_timeout{};
  // How long a drain leaves idle keep-alive connections open for a request already on its way
  // (answered with `Connection: close`); unset: drain_idle_grace() picks it. Below drain_timeout.
  std::optional<std::chrono::milliseconds> drain_idle_grace;
  // Expired tokens are removed once expired for longer than expired_retention (0: at once), by a
  // sweep every expired_sweep_interval.
  std::chrono::milliseconds expired_retention{};
  std::chrono::milliseconds expired_sweep_interval{};
  // How often marked key uses are written to the store; 0: uses are not even marked.
  std::chrono::milliseconds last_used_interval{};
  // How often rate-limit counts are shared with the other processes of a shared store; 0: never.
  std::chrono::milliseconds rate_limit_sync_interval{};
  log::level log_level{};
  bool access_log = false;               // one JSON line per API request (never the query string or a key)
  std::chrono::seconds token_ttl{};      // lifetime of a key created without one; 0: none
  std::chrono::seconds token_max_ttl{};  // longest lifetime a key may get; 0: no maximum
  // The rate limit of keys without their own (limit 0: none), and /verify's status for a key
  // over its limit (429, or 403/401 behind gateways that turn anything else into a 500).
  core::rate_limit rate_limit{};
  unsigned verify_rate_limited_status = 429;
  std::string test_fault_file;  // testing only: see storage/faulty_store.hpp
};

// The drain's idle grace in effect: the configured one, or 2s but at most half the drain timeout.
[[nodiscard]] std::chrono::milliseconds drain_idle_grace(const config& c) noexcept;

// A flag or value the user got wrong; main prints what() on one line and exits 2.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks an environment variable up; injectable so tests need not touch the real environment.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

[[nodiscard]] env_lookup process_environment();

// Parses `serve` flags (args exclude the program and subcommand names). Flags win over the
// environment, which wins over defaults. Throws config_error.
[[nodiscard]] config parse_config(const std::vector<std::string>& args, const env_lookup& env);

// `tokend --help`, with the flags of the table (config_flags.hpp).
[[nodiscard]] std::string usage_text();

// "host:port" or "[v6]:port"; throws config_error.
[[nodiscard]] endpoint_spec parse_endpoint(const std::string& flag, const std::string& text);

}  // namespace tokend::server
