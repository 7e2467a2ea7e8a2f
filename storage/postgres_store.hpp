// The shared token store: PostgreSQL through libpq's asynchronous API, for several tokend
// processes (pods) over one database, with revocations pushed to every process's cache.
#pragma once

#include "storage/token_store.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tokend::storage {

struct postgres_options {
  std::string conninfo;           // a libpq connection string or postgresql:// URL
  std::string schema = "public";  // tables live here (tests use one schema each); see postgres_schema_problem
  std::size_t connections = 4;    // pool of command connections (plus one for LISTEN and polling)
  std::size_t max_queue = 65536;  // pending operations; more are refused with core::errc::overloaded
  std::size_t max_batch = 1024;   // creates (or lookups) per statement
  // A missed NOTIFY is caught by polling the revocations table this often: the propagation bound.
  std::chrono::milliseconds revocation_poll{1000};
  std::chrono::milliseconds connect_timeout{5000};
  // A command not answered within this drops its connection and fails with unavailable (503), so
  // an unresponsive database cannot hold requests indefinitely.
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds start_timeout{30000};  // to create the schema and open the pool at start
  // Failures worth an operator's attention (an exception caught by a storage worker or the
  // listener), e.g. for the service's log; never a key or the connection string. Empty: dropped.
  std::function<void(bool error, std::string_view message)> log;
};

// Why `name` cannot be the store's schema, or empty when it can: the one rule, which the store
// enforces and --postgres-schema reports. 1 to 48 bytes (the revocation channel, the name plus
// ".tokend_revoked", must fit PostgreSQL's 63), printable ASCII, not starting with "pg_" (reserved
// by PostgreSQL). Any other name, reserved words and capitals included, is used exactly, quoted.
[[nodiscard]] std::string postgres_schema_problem(std::string_view name);

// Connects, creates or migrates the schema (storage/postgres_schema.sql) and opens the pool.
// Handlers run on the store's single thread. While no connection is up (database down) every
// operation is refused with core::errc::unavailable; connections come back by themselves with
// backoff. shared() is true and on_revoked() reports deletes made by any process; rate-limit counts
// go to the other processes of the same schema by NOTIFY (async_share_admits, on_peer_admits).
//
// Throws std::runtime_error (never naming the connection string, which may hold a password) when
// the database cannot be reached or the schema cannot be created within start_timeout.
[[nodiscard]] std::unique_ptr<token_store> open_postgres_store(const postgres_options& options);

}  // namespace tokend::storage
