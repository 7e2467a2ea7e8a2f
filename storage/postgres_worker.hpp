// One command connection of the PostgreSQL store's pool: it prepares the store's statements on
// each new session and runs a batch of jobs as one statement, answering every job. Storage thread
// only.
#pragma once

#include "storage/pg_connection.hpp"
#include "storage/postgres_jobs.hpp"
#include "storage/postgres_names.hpp"
#include "storage/postgres_session.hpp"
#include "storage/postgres_store.hpp"
#include "storage/store_stats.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

namespace tokend::storage::pg {

class worker {
 public:
  // `default_max_tokens`: the store's bound for owners without one of their own (0: none), read
  // by every create.
  worker(boost::asio::io_context& ioc, const postgres_options& options, const postgres_names& names,
         batch_counters& counters, const std::atomic<std::uint64_t>& default_max_tokens);

  // Opens a new session and prepares the statements on it. False when either fails.
  [[nodiscard]] boost::asio::awaitable<bool> connect();
  // Runs `batch`, whose jobs are all of one type, answering each. Should it throw, the jobs not
  // answered yet are left in `batch` with their handlers.
  [[nodiscard]] boost::asio::awaitable<void> run();

  connection conn;
  reconnect_backoff backoff;
  bool busy = false;       // running a command: shutdown lets it finish
  std::vector<job> batch;  // the batch being run

 private:
  [[nodiscard]] boost::asio::awaitable<void> run_lookups();
  [[nodiscard]] boost::asio::awaitable<void> run_creates();
  [[nodiscard]] boost::asio::awaitable<void> run_remove();
  [[nodiscard]] boost::asio::awaitable<void> run_roll();
  [[nodiscard]] boost::asio::awaitable<void> run_set_rate_limit();
  [[nodiscard]] boost::asio::awaitable<void> run_record_uses();
  [[nodiscard]] boost::asio::awaitable<void> run_remove_expired();
  [[nodiscard]] boost::asio::awaitable<void> run_list();
  [[nodiscard]] boost::asio::awaitable<void> run_list_after();
  [[nodiscard]] boost::asio::awaitable<void> run_quota();
  [[nodiscard]] boost::asio::awaitable<void> run_set_max_tokens();
  [[nodiscard]] boost::asio::awaitable<void> run_empty();
  [[nodiscard]] boost::asio::awaitable<void> run_share_admits();

  const postgres_options& options_;
  const postgres_names& names_;
  batch_counters& counters_;
  const std::atomic<std::uint64_t>& default_max_tokens_;
};

}  // namespace tokend::storage::pg
