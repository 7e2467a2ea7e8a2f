// One non-blocking libpq connection driven by an io_context: connect (PQconnectStart/Poll), send a
// query, wait on the socket for its results. Used only from the postgres store's own thread, so
// libpq never blocks an io thread, and no call here blocks at all (except libpq's host name lookup
// inside PQconnectStart, which also runs on that storage thread).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

extern "C" {
struct pg_conn;
struct pg_result;
}

namespace tokend::storage::pg {

struct result_deleter {
  void operator()(pg_result* r) const noexcept;
};
using result_ptr = std::unique_ptr<pg_result, result_deleter>;

// The outcome of one command (or several sent together): every PGresult, or why it failed.
struct reply {
  std::vector<result_ptr> results;
  std::string error;     // empty on success
  std::string sqlstate;  // the server's SQLSTATE of the first failed result, if any
  [[nodiscard]] bool ok() const noexcept { return error.empty(); }
  // Rows of the last result, and one cell as text (libpq's text format).
  [[nodiscard]] int rows() const noexcept;
  [[nodiscard]] std::string_view cell(int row, int column) const noexcept;
};

class connection {
 public:
  explicit connection(boost::asio::io_context& ioc);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Opens a new session (closing any previous one). False with last_error() when it fails or
  // takes longer than `timeout`.
  [[nodiscard]] boost::asio::awaitable<bool> connect(std::string conninfo, std::chrono::milliseconds timeout);

  // True while the session is established and usable.
  [[nodiscard]] bool ok() const noexcept;
  // True while the session is up with no command in progress and no transaction open: it can take
  // the next command (e.g. after an exception interrupted the code that drove the last one).
  [[nodiscard]] bool between_commands() const noexcept;
  // Reads whatever the server sent while the connection sat idle (without waiting), so that a
  // session the server has terminated (a restart) is noticed before a command is sent on it.
  [[nodiscard]] bool alive() noexcept;
  void close() noexcept;
  // Ends any wait on the socket at once (the awaiting operation reports an error); for shutdown.
  void cancel() noexcept;
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }
  // How long a command may take before the session is dropped (0: no limit, e.g. for LISTEN).
  void set_command_timeout(std::chrono::milliseconds timeout) noexcept { command_timeout_ = timeout; }

  // The commands take their text and parameters by value, so the coroutine frame owns them (see
  // docs/ARCHITECTURE.md#coroutine-rules). Simple-protocol query (may hold several statements, run
  // as one implicit transaction).
  [[nodiscard]] boost::asio::awaitable<reply> exec(std::string sql);
  [[nodiscard]] boost::asio::awaitable<reply> prepare(const char* name, std::string sql);
  // Prepares every (name, sql) in one round trip (libpq pipeline mode): a reconnecting pool is
  // ready again after one network round trip rather than one per statement.
  [[nodiscard]] boost::asio::awaitable<reply> prepare_all(
      std::vector<std::pair<const char*, std::string>> statements);
  // Text-format parameters and results.
  [[nodiscard]] boost::asio::awaitable<reply> exec_prepared(const char* name,
                                                            std::vector<std::string> params);

  // For an idle session: waits until the socket is readable, then reads what arrived, as alive()
  // does. False when the server ended the session (it sends a notice and closes: a stop, a restart,
  // a terminated backend). Cancellable (per-operation cancellation, or cancel()): true then.
  [[nodiscard]] boost::asio::awaitable<bool> idle_input();

  // Waits until the socket is readable (a notification or a result may be there) or `until`
  // passes; then reads what arrived. False when the connection broke (or was cancelled).
  [[nodiscard]] boost::asio::awaitable<bool> poll_input(std::chrono::steady_clock::time_point until);

  // NOTIFY messages received so far: (channel, payload).
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> take_notifications();

 private:
  enum class wait_result { ready, timeout, failed };
  [[nodiscard]] boost::asio::awaitable<wait_result> wait(bool for_write,
                                                         std::chrono::steady_clock::time_point until);
  [[nodiscard]] boost::asio::awaitable<reply> collect(bool sent, bool pipelined = false);
  void attach_socket();
  void drop_socket() noexcept;

  boost::asio::io_context& ioc_;
  pg_conn* conn_ = nullptr;
  // A duplicate of libpq's socket, which Asio owns and closes: libpq closes its own descriptor when
  // a connection fails or moves to another address, and the number may then be reused by another
  // connection before Asio would have deregistered it. Waiting on the duplicate never touches it.
  std::optional<boost::asio::posix::stream_descriptor> socket_;
  int libpq_fd_ = -1;  // the libpq descriptor socket_ duplicates
  boost::asio::steady_timer timer_;
  std::string last_error_;
  std::chrono::milliseconds command_timeout_{0};
};

}  // namespace tokend::storage::pg
