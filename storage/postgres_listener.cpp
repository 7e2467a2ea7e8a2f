// The revocation listener: LISTEN for the fast path, polling for what a NOTIFY may miss; and the
// rate-limit counts of other processes, LISTENed for on the same session.
#include "storage/postgres_listener.hpp"

#include "storage/pg_text.hpp"
#include "storage/postgres_admits.hpp"

#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend::storage::pg {
namespace {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

// Sequence values are taken before commit, so a revocation can become visible after one with a
// higher seq: the poll re-reads revocations this recent below its high-water mark as well.
constexpr const char* late_commit_window = "10 seconds";
constexpr std::size_t catch_up_rows = 10000;

}  // namespace

revocation_listener::revocation_listener(net::io_context& ioc, const postgres_options& options,
                                         const postgres_names& names, std::uint64_t own_sender,
                                         std::function<void(bool)> set_listening)
    : options_(options),
      names_(names),
      set_listening_(std::move(set_listening)),
      conn_(ioc),
      backoff_(ioc),
      own_sender_(own_sender) {
  conn_.set_command_timeout(options.command_timeout);  // its polls; waits for NOTIFY are not commands
}

void revocation_listener::on_revoked(std::function<void(const core::key_digest&)> callback) {
  const std::lock_guard lock(revoked_mutex_);
  revoked_ = std::move(callback);
}

void revocation_listener::revoke(const core::key_digest& digest) {
  const std::lock_guard lock(revoked_mutex_);
  if (revoked_) revoked_(digest);
}

void revocation_listener::on_peer_admits(token_store::peer_admits_handler callback) {
  const std::lock_guard lock(peers_mutex_);
  peers_ = std::move(callback);
}

// A payload nobody should send (another program on the channel, a bug) is ignored and counted; a
// callback that throws loses those counts, not the session, so this process goes on hearing.
void revocation_listener::hear_admits(std::string_view payload) {
  const auto heard = parse_admits(payload);
  if (!heard) {
    ++malformed_;
    if ((malformed_ & (malformed_ - 1)) == 0) {  // the 1st, 2nd, 4th...: visible, never a flood
      report(options_, false,
             "PostgreSQL store: ignored a malformed rate-limit payload (" + std::to_string(malformed_) +
                 " so far)");
    }
    return;
  }
  if (heard->sender == own_sender_) return;
  const std::lock_guard lock(peers_mutex_);
  if (!peers_) return;
  try {
    peers_(heard->sender, heard->counts);
  } catch (const std::exception& e) {
    report(options_, true, std::string("PostgreSQL store: the rate-limit callback failed: ") + e.what());
  } catch (...) {
    report(options_, true, "PostgreSQL store: the rate-limit callback failed with an unknown exception");
  }
}

void revocation_listener::stop() {
  stopping_ = true;
  conn_.cancel();
  backoff_.cancel();
}

net::awaitable<void> revocation_listener::run() {
  while (!stopping_) {
    bool served = false;
    try {
      served = co_await session();
    } catch (const std::exception& e) {  // e.g. from an on_revoked callback: the listener goes on
      report(options_, true, std::string("PostgreSQL store: the revocation listener failed: ") + e.what());
    } catch (...) {
      report(options_, true, "PostgreSQL store: the revocation listener failed with an unknown exception");
    }
    set_listening_(false);
    conn_.close();
    if (served) {
      backoff_.reset();
    } else if (!stopping_) {
      co_await backoff_.wait();
    }
  }
}

net::awaitable<bool> revocation_listener::catch_up() {
  for (;;) {
    // Named, not a braced temporary: see docs/ARCHITECTURE.md#coroutine-rules.
    std::vector<std::string> params;
    params.push_back(std::to_string(last_seq_));
    const reply r = co_await conn_.exec_prepared("after", params);
    if (!r.ok()) co_return false;
    for (int row = 0; row < r.rows(); ++row) {
      std::uint64_t seq = 0;
      const auto digest = parse_digest_hex(r.cell(row, 1));
      if (!parse_integer(r.cell(row, 0), seq) || !digest) continue;
      revoke(*digest);
      last_seq_ = std::max(last_seq_, seq);
    }
    if (static_cast<std::size_t>(r.rows()) < catch_up_rows) break;
  }
  std::vector<std::string> params;
  params.push_back(std::to_string(last_seq_));
  const reply late = co_await conn_.exec_prepared("late", params);
  if (!late.ok()) co_return false;
  for (int row = 0; row < late.rows(); ++row) {
    if (const auto digest = parse_digest_hex(late.cell(row, 0))) revoke(*digest);
  }
  co_return true;
}

// One session: LISTEN, catch up, then take notifications and poll until the session breaks (the
// socket is watched, so a server that goes away is noticed at once) or a poll fails. False when it
// could not be set up (the caller backs off).
net::awaitable<bool> revocation_listener::session() {
  const std::string revocations = names_.table("tokend_revocations");
  const std::string after = "SELECT seq, encode(digest, 'hex') FROM " + revocations +
                            " WHERE seq > $1 ORDER BY seq LIMIT " + std::to_string(catch_up_rows);
  const std::string late = "SELECT encode(digest, 'hex') FROM " + revocations +
                           " WHERE seq <= $1 AND revoked_at > now() - interval '" + late_commit_window +
                           "' LIMIT " + std::to_string(catch_up_rows);
  const bool up = co_await conn_.connect(options_.conninfo, options_.connect_timeout) &&
                  (co_await conn_.exec("LISTEN " + quote_identifier(names_.channel()) + "; LISTEN " +
                                       quote_identifier(names_.rate_channel())))
                      .ok() &&
                  (co_await conn_.prepare("after", after)).ok() &&
                  (co_await conn_.prepare("late", late)).ok();
  // Deletes committed while this connection was down notified nobody here: read them now.
  if (!up || !co_await catch_up()) co_return false;
  set_listening_(true);
  auto next_poll = clock::now() + options_.revocation_poll;
  bool healthy = true;
  while (healthy && !stopping_) {
    for (const auto& [channel, payload] : conn_.take_notifications()) {
      if (channel == names_.rate_channel()) {
        hear_admits(payload);
        continue;
      }
      // "<seq>:<hex digest>"; the seq is not taken as a high-water mark (commits may be out of order).
      const auto colon = payload.find(':');
      if (colon == std::string::npos) continue;
      const auto digest = parse_digest_hex(std::string_view(payload).substr(colon + 1));
      if (digest) revoke(*digest);
    }
    if (clock::now() >= next_poll) {
      healthy = co_await catch_up();
      next_poll = clock::now() + options_.revocation_poll;
      continue;
    }
    healthy = co_await conn_.poll_input(next_poll);
  }
  co_return true;
}

}  // namespace tokend::storage::pg
