// The non-blocking libpq connection: libpq's asynchronous API paced by waits on its socket.
#include "storage/pg_connection.hpp"

#include <libpq-fe.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <variant>

namespace tokend::storage::pg {
namespace net = boost::asio;
using clock = std::chrono::steady_clock;

void result_deleter::operator()(pg_result* r) const noexcept { PQclear(r); }

int reply::rows() const noexcept { return results.empty() ? 0 : PQntuples(results.back().get()); }

std::string_view reply::cell(int row, int column) const noexcept {
  const PGresult* r = results.back().get();
  return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
}

connection::connection(net::io_context& ioc) : ioc_(ioc), timer_(ioc) {}

connection::~connection() { close(); }

bool connection::ok() const noexcept { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

bool connection::between_commands() const noexcept {
  return ok() && PQtransactionStatus(conn_) == PQTRANS_IDLE;  // ACTIVE while a command runs
}

bool connection::alive() noexcept {
  if (!ok()) return false;
  if (PQconsumeInput(conn_) == 0) return false;
  return ok();
}

void connection::close() noexcept {
  drop_socket();
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

// NOLINTNEXTLINE(bugprone-exception-escape): a timer's cancel throws only if the reactor fails: terminate
void connection::cancel() noexcept {
  boost::system::error_code ignored;
  if (socket_) socket_->cancel(ignored);
  timer_.cancel();
}

void connection::drop_socket() noexcept {
  if (!socket_) return;
  boost::system::error_code ignored;
  socket_->close(ignored);  // the duplicate only: libpq's descriptor stays libpq's
  socket_.reset();
  libpq_fd_ = -1;
}

void connection::attach_socket() {
  const int fd = PQsocket(conn_);
  if (socket_ && libpq_fd_ == fd) return;
  // libpq may switch sockets while connecting (another address, SSL fallback), or drop it.
  drop_socket();
  if (fd < 0) return;
  const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return;
  socket_.emplace(ioc_);
  boost::system::error_code ec;
  socket_->assign(own, ec);
  if (ec) {
    ::close(own);
    socket_.reset();
    return;
  }
  libpq_fd_ = fd;
}

net::awaitable<connection::wait_result> connection::wait(bool for_write, clock::time_point until) {
  if (!socket_) co_return wait_result::failed;
  using namespace net::experimental::awaitable_operators;
  timer_.expires_at(until);
  const auto kind =
      for_write ? net::posix::descriptor_base::wait_write : net::posix::descriptor_base::wait_read;
  const auto first = co_await (socket_->async_wait(kind, net::as_tuple(net::use_awaitable)) ||
                               timer_.async_wait(net::as_tuple(net::use_awaitable)));
  if (first.index() == 0)
    co_return std::get<0>(std::get<0>(first)) ? wait_result::failed : wait_result::ready;
  // The timer won: expired (a timeout), or cancelled by cancel() (a failure).
  co_return std::get<0>(std::get<1>(first)) ? wait_result::failed : wait_result::timeout;
}

net::awaitable<bool> connection::connect(std::string conninfo, std::chrono::milliseconds timeout) {
  close();
  const auto until = clock::now() + timeout;
  conn_ = PQconnectStart(conninfo.c_str());
  if (conn_ == nullptr) {
    last_error_ = "out of memory";
    co_return false;
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    last_error_ = PQerrorMessage(conn_);
    close();
    co_return false;
  }
  // As the libpq manual says: behave as if the last poll had returned PGRES_POLLING_WRITING.
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  for (;;) {
    attach_socket();
    if (status == PGRES_POLLING_OK) break;
    if (status == PGRES_POLLING_FAILED) {
      last_error_ = PQerrorMessage(conn_);
      close();
      co_return false;
    }
    const auto waited = co_await wait(status == PGRES_POLLING_WRITING, until);
    if (waited != wait_result::ready) {
      last_error_ = waited == wait_result::timeout ? "connection timed out" : "connection attempt cancelled";
      close();
      co_return false;
    }
    status = PQconnectPoll(conn_);
  }
  // Server notices (e.g. "already exists, skipping" from the idempotent schema) are not errors;
  // libpq would print them on stderr.
  const auto ignore_notice = [](void*, const char*) {};
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
  if (PQsetnonblocking(conn_, 1) != 0) {
    last_error_ = PQerrorMessage(conn_);
    close();
    co_return false;
  }
  last_error_.clear();
  co_return true;
}

net::awaitable<reply> connection::collect(bool sent, bool pipelined) {
  reply out;
  if (!sent) {
    out.error = conn_ != nullptr ? PQerrorMessage(conn_) : "not connected";
    co_return out;
  }
  // A server that stops answering (a partition without a reset) must not hold the request, nor
  // this connection, forever: past the deadline the session is dropped and the command fails.
  const auto until =
      command_timeout_.count() > 0 ? clock::now() + command_timeout_ : clock::time_point::max();
  const auto give_up = [&](const char* what) {
    out.error = what;
    close();
  };
  // Push the whole command out: in non-blocking mode PQflush returns 1 while data remains.
  for (;;) {
    const int flushed = PQflush(conn_);
    if (flushed == 0) break;
    if (flushed < 0) {
      out.error = "connection lost while sending";
      co_return out;
    }
    if (const auto w = co_await wait(true, until); w != wait_result::ready) {
      give_up(w == wait_result::timeout ? "timed out sending a command" : "connection lost while sending");
      co_return out;
    }
  }
  bool after_null = false;  // the previous PQgetResult returned NULL
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      if (const auto w = co_await wait(false, until); w != wait_result::ready) {
        give_up(w == wait_result::timeout ? "timed out waiting for a reply"
                                          : "connection lost while waiting");
        co_return out;
      }
      if (PQconsumeInput(conn_) == 0) {
        out.error = PQerrorMessage(conn_);
        if (out.error.empty()) out.error = "connection lost while waiting for a reply";
        co_return out;
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {
      // In a pipeline, NULL only separates one command's results from the next; the sync marks the end.
      // But a session libpq has dropped (or a second NULL in a row: nothing left queued) yields
      // NULL for ever and no sync: that ends the pipeline as a failure (libpq's PQexecFinish checks
      // the same), or this loop would spin the storage thread.
      if (!pipelined) break;
      if (PQstatus(conn_) == CONNECTION_BAD || after_null) {
        if (out.error.empty()) out.error = "connection lost in a pipeline";
        close();
        break;
      }
      after_null = true;
      continue;
    }
    after_null = false;
    const auto status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && out.error.empty()) {
      out.error = PQresultErrorMessage(r);
      if (out.error.empty()) out.error = "command failed";
      if (const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE)) out.sqlstate = state;
    }
    out.results.emplace_back(r);
  }
  co_return out;
}

net::awaitable<reply> connection::exec(std::string sql) {
  const bool sent = conn_ != nullptr && PQsendQuery(conn_, sql.c_str()) == 1;
  co_return co_await collect(sent);
}

net::awaitable<reply> connection::prepare(const char* name, std::string sql) {
  const bool sent = conn_ != nullptr && PQsendPrepare(conn_, name, sql.c_str(), 0, nullptr) == 1;
  co_return co_await collect(sent);
}

net::awaitable<reply> connection::prepare_all(std::vector<std::pair<const char*, std::string>> statements) {
  bool sent = conn_ != nullptr && PQenterPipelineMode(conn_) == 1;
  for (const auto& [name, sql] : statements) {
    sent = sent && PQsendPrepare(conn_, name, sql.c_str(), 0, nullptr) == 1;
  }
  sent = sent && PQpipelineSync(conn_) == 1;
  reply out = co_await collect(sent, true);
  // Back to ordinary mode for the commands to come; a broken session is closed and reconnected anyway.
  if (conn_ != nullptr && PQpipelineStatus(conn_) != PQ_PIPELINE_OFF && PQexitPipelineMode(conn_) != 1 &&
      out.ok()) {
    out.error = PQerrorMessage(conn_);
  }
  co_return out;
}

net::awaitable<reply> connection::exec_prepared(const char* name, std::vector<std::string> params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  const bool sent = conn_ != nullptr && PQsendQueryPrepared(conn_, name, static_cast<int>(values.size()),
                                                            values.data(), nullptr, nullptr, 0) == 1;
  co_return co_await collect(sent);
}

net::awaitable<bool> connection::idle_input() {
  if (!ok() || !socket_) co_return false;
  const auto [ec] =
      co_await socket_->async_wait(net::posix::descriptor_base::wait_read, net::as_tuple(net::use_awaitable));
  if (ec) co_return ok();  // cancelled: nothing learned about the session
  co_return alive();
}

net::awaitable<bool> connection::poll_input(clock::time_point until) {
  if (!ok()) co_return false;
  const auto waited = co_await wait(false, until);
  if (waited == wait_result::failed) co_return false;
  if (waited == wait_result::ready && PQconsumeInput(conn_) == 0) co_return false;
  co_return ok();
}

std::vector<std::pair<std::string, std::string>> connection::take_notifications() {
  std::vector<std::pair<std::string, std::string>> out;
  if (conn_ == nullptr) return out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.emplace_back(n->relname, n->extra);
    PQfreemem(n);
  }
  return out;
}

}  // namespace tokend::storage::pg
