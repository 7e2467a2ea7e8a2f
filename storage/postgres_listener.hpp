// The PostgreSQL store's revocation listener: one connection that LISTENs for the notification
// every delete sends at commit, and polls the revocations table for what a notification may miss
// (sent while this connection was down, or lost). It also hears the rate-limit counts other
// processes share (postgres_admits), which nothing stores: those missed are lost. Storage thread
// only, except on_revoked() and on_peer_admits().
#pragma once

#include "core/key.hpp"
#include "storage/pg_connection.hpp"
#include "storage/postgres_names.hpp"
#include "storage/postgres_session.hpp"
#include "storage/postgres_store.hpp"
#include "storage/token_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>

namespace tokend::storage::pg {

class revocation_listener {
 public:
  // `set_listening` is told whenever the listener starts or stops hearing every revocation (and
  // the counts shared meanwhile). Counts from `own_sender`, this process's, are not passed on.
  revocation_listener(boost::asio::io_context& ioc, const postgres_options& options,
                      const postgres_names& names, std::uint64_t own_sender,
                      std::function<void(bool)> set_listening);

  // Any thread: the one callback told of every revoked digest (see token_store::on_revoked).
  void on_revoked(std::function<void(const core::key_digest&)> callback);
  // Any thread: the one callback told of other processes' counts (see token_store::on_peer_admits).
  void on_peer_admits(token_store::peer_admits_handler callback);

  // Revocations up to `seq` are older than this process and concern nothing it holds.
  void start_after(std::uint64_t seq) noexcept { last_seq_ = seq; }
  // Listens, reconnecting with backoff, until stop().
  [[nodiscard]] boost::asio::awaitable<void> run();
  // Ends run() soon: its waits are cancelled.
  void stop();
  // Drops the connection; for after the storage thread has stopped.
  void close() noexcept { conn_.close(); }

 private:
  [[nodiscard]] boost::asio::awaitable<bool> session();
  [[nodiscard]] boost::asio::awaitable<bool> catch_up();
  void revoke(const core::key_digest& digest);
  void hear_admits(std::string_view payload);

  const postgres_options& options_;
  const postgres_names& names_;
  const std::function<void(bool)> set_listening_;
  connection conn_;
  reconnect_backoff backoff_;
  std::uint64_t last_seq_ = 0;  // the highest revocation seen
  bool stopping_ = false;

  std::mutex revoked_mutex_;
  std::function<void(const core::key_digest&)> revoked_;

  const std::uint64_t own_sender_;
  std::uint64_t malformed_ = 0;  // rate-limit payloads ignored
  std::mutex peers_mutex_;
  token_store::peer_admits_handler peers_;
};

}  // namespace tokend::storage::pg
