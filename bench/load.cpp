// The load engine of tokend-bench (see load.hpp). One io_context per thread, each owning its share
// of the connections, their statistics and its timers, so the request path takes no lock and shares
// no cache line; threads meet only on the --requests ticket counters and at the end, when their
// statistics are merged.
#include "bench/load.hpp"

#include "core/enum_table.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/crc.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace tokend::bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr core::enum_table<request_kind, std::string_view, 5> request_kind_names = {{
    {request_kind::create, "create"},
    {request_kind::list, "list"},
    {request_kind::authfail, "authfail"},
    {request_kind::verify, "verify"},
    {request_kind::verify_fail, "verify-fail"},
}};

constexpr core::enum_table<transport_error, std::string_view, 7> transport_error_names = {{
    {transport_error::connect_refused, "connect_refused"},
    {transport_error::connect_failed, "connect_failed"},
    {transport_error::reset, "reset"},
    {transport_error::timeout, "timeout"},
    {transport_error::eof, "eof"},
    {transport_error::bad_response, "bad_response"},
    {transport_error::other, "other"},
}};

}  // namespace

std::string_view to_string(request_kind k) noexcept { return core::value_of(request_kind_names, k, {"?"}); }

std::string_view to_string(transport_error e) noexcept {
  return core::value_of(transport_error_names, e, {"?"});
}

std::uint64_t load_result::transport_errors() const noexcept {
  std::uint64_t n = 0;
  for (auto e : errors) n += e;
  return n;
}

void load_result::merge_seconds(const std::vector<second_counts>& other) {
  if (other.size() > per_second.size()) per_second.resize(other.size());
  for (std::size_t i = 0; i < other.size(); ++i) {
    per_second[i].responses += other[i].responses;
    per_second[i].non_2xx += other[i].non_2xx;
    per_second[i].transport_errors += other[i].transport_errors;
  }
}

namespace {

// A key with the shape and checksum of a real one (28 bytes + CRC-32, 64 lowercase hex) that was
// never issued: it passes the server's format check and so exercises the lookup path, not only the
// cheap syntactic rejection.
std::string authfail_key() {
  std::array<std::uint8_t, 32> raw{};
  for (std::size_t i = 0; i < 28; ++i) raw[i] = static_cast<std::uint8_t>(0xb3 ^ (i * 37 + 11));
  boost::crc_32_type crc;
  crc.process_bytes(raw.data(), 28);
  const std::uint32_t sum = crc.checksum();
  for (int i = 0; i < 4; ++i)
    raw[28 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(sum >> (24 - 8 * i));
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : raw) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string serialize(http::request<http::string_body>& req) {
  req.prepare_payload();
  std::ostringstream os;
  os << req;
  return std::move(os).str();
}

transport_error classify(const error_code& ec) {
  if (ec == net::error::connection_reset || ec == net::error::broken_pipe ||
      ec == net::error::connection_aborted) {
    return transport_error::reset;
  }
  if (ec == net::error::eof) return transport_error::eof;
  if (ec == net::error::timed_out) return transport_error::timeout;
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return transport_error::bad_response;
  }
  return transport_error::other;
}

// What every thread reads (immutable once the run starts) plus the few counters they share.
struct shared_state {
  explicit shared_state(const load_config& c)
      : cfg(c),
        endpoint(net::ip::make_address(c.address), c.port),
        requests(serialize_requests(c)),
        requests_mode(c.requests > 0),
        open_loop(c.rate > 0),
        tickets(static_cast<std::int64_t>(c.requests)) {
    for (auto w : c.mix) mix_total += w;
  }

  const load_config& cfg;
  const tcp::endpoint endpoint;
  const std::array<std::string, request_kind_count> requests;
  const bool requests_mode;
  const bool open_loop;
  unsigned mix_total = 0;
  clock_type::time_point start;
  clock_type::time_point measure_start;  // start + warmup
  clock_type::time_point end = clock_type::time_point::max();

  std::atomic<std::int64_t> tickets;  // --requests: sends still allowed in the measured window
  std::atomic<std::uint64_t> completed{0};
  std::atomic<clock_type::rep> finished_at{0};  // when the last ticket completed
  std::atomic<bool> connected_once{false};
  std::vector<net::io_context*> contexts;

  bool take_ticket() noexcept {
    if (tickets.load(std::memory_order_relaxed) <= 0) return false;
    return tickets.fetch_sub(1, std::memory_order_relaxed) > 0;
  }

  void complete_ticket(clock_type::time_point now) noexcept {
    if (completed.fetch_add(1, std::memory_order_acq_rel) + 1 == cfg.requests) {
      finished_at.store(now.time_since_epoch().count(), std::memory_order_release);
      for (auto* c : contexts) c->stop();
    }
  }
};

// One thread's statistics. Plain counters on the request path; the live_* atomics are refreshed by
// the sweep timer for the progress line.
struct thread_stats {
  load_result r;
  std::atomic<std::uint64_t> live_responses{0};
  std::atomic<std::uint64_t> live_successes{0};
  std::atomic<std::uint64_t> live_errors{0};
  bool per_kind_latency = false;
  clock_type::time_point origin;  // when the measured window opens: second 0 of per_second

  // The bucket of the second `now` falls in; grows the series only when a run outlasts its reserve.
  second_counts& second_of(clock_type::time_point now) {
    const auto since = now - origin;
    const auto i = since.count() > 0 ? static_cast<std::size_t>(since / std::chrono::seconds{1}) : 0;
    if (i >= r.per_second.size()) r.per_second.resize(i + 1);
    return r.per_second[i];
  }

  void record(request_kind k, unsigned status, std::uint64_t latency_ns, clock_type::time_point now) {
    const bool ok = status >= 200 && status < 300;
    auto& second = second_of(now);
    ++second.responses;
    second.non_2xx += ok ? 0 : 1;
    r.latency.record(latency_ns);
    auto& kr = r.by_kind[static_cast<std::size_t>(k)];
    if (per_kind_latency) kr.latency.record(latency_ns);
    ++kr.responses;
    ++r.responses;
    if (ok) {
      ++kr.successes;
      ++r.successes;
    }
    ++r.status[status < r.status.size() ? status : 0];
  }

  void publish() noexcept {
    live_responses.store(r.responses, std::memory_order_relaxed);
    live_successes.store(r.successes, std::memory_order_relaxed);
    live_errors.store(r.transport_errors(), std::memory_order_relaxed);
  }
};

// A request queued or outstanding on a connection. Responses come back in order, so a ring suffices.
struct in_flight {
  clock_type::time_point scheduled;  // latency origin: the scheduled time (open loop) or send time
  clock_type::time_point sent;       // what --timeout measures
  request_kind kind = request_kind::list;
  bool counted = false;  // holds a --requests ticket
};

constexpr std::size_t read_chunk = std::size_t{16} * 1024;
constexpr auto first_backoff = std::chrono::milliseconds{10};
constexpr auto max_backoff = std::chrono::milliseconds{500};

using response_parser = http::response_parser<http::buffer_body>;

class connection {
 public:
  connection(net::io_context& ioc, shared_state& s, thread_stats& st, std::vector<char>& body_sink,
             std::size_t index)
      : s_(s),
        st_(st),
        body_sink_(body_sink),
        socket_(ioc),
        timer_(ioc),
        ring_(s.cfg.pipeline),
        index_(index) {
    rng_ = (0x9e3779b97f4a7c15ULL * (index + 1)) | 1;  // xorshift needs a non-zero seed
    gather_.reserve(s.cfg.pipeline);
    if (s_.open_loop) {
      // Each connection sends every connections/rate seconds; phases are staggered by 1/rate so
      // the whole load is evenly spaced rather than arriving in bursts.
      const double per_request_ns = 1e9 / s_.cfg.rate;
      interval_ = std::chrono::nanoseconds{
          static_cast<std::int64_t>(per_request_ns * static_cast<double>(s_.cfg.connections))};
      if (interval_.count() <= 0) interval_ = std::chrono::nanoseconds{1};
      next_send_ = s_.start + std::chrono::nanoseconds{
                                  static_cast<std::int64_t>(per_request_ns * static_cast<double>(index_))};
    }
  }

  void connect() {
    state_ = state::connecting;
    ++epoch_;
    connect_started_ = clock_type::now();
    socket_.async_connect(s_.endpoint, [this, e = epoch_](const error_code& ec) {
      if (e != epoch_) return;
      if (ec) {
        connect_failed(ec == net::error::connection_refused ? transport_error::connect_refused
                                                            : transport_error::connect_failed);
        return;
      }
      error_code ignored;
      socket_.set_option(tcp::no_delay(true), ignored);
      state_ = state::open;
      backoff_ = first_backoff;
      if (connected_before_) ++st_.r.reconnects;
      connected_before_ = true;
      s_.connected_once.store(true, std::memory_order_relaxed);
      pump();
      read();
    });
  }

  // Called by the thread's sweep timer: deadlines and reconnect back-off, off the request path.
  void sweep(clock_type::time_point now) {
    switch (state_) {
      case state::connecting:
        if (now - connect_started_ > s_.cfg.timeout) connect_failed(transport_error::timeout);
        break;
      case state::open:
        if (sent_ > 0 && now - front().sent > s_.cfg.timeout) fail(transport_error::timeout);
        break;
      case state::backoff:
        if (now >= retry_at_) connect();
        break;
      case state::done:
        break;
    }
  }

 private:
  enum class state { connecting, open, backoff, done };

  in_flight& front() noexcept { return ring_[head_]; }

  void push(const in_flight& f) noexcept {
    ring_[(head_ + size_) % ring_.size()] = f;
    ++size_;
  }

  in_flight pop() noexcept {
    in_flight f = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
    --sent_;
    return f;
  }

  request_kind pick_kind() noexcept {
    unsigned r = 0;
    if (s_.mix_total > 1) {
      rng_ ^= rng_ >> 12;  // xorshift64*: cheap, and each connection has its own stream
      rng_ ^= rng_ << 25;
      rng_ ^= rng_ >> 27;
      r = static_cast<unsigned>(((rng_ * 0x2545f4914f6cdd1dULL) >> 32) % s_.mix_total);
    }
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      if (r < s_.cfg.mix[k]) return static_cast<request_kind>(k);
      r -= s_.cfg.mix[k];
    }
    return request_kind::list;
  }

  // Queues what may be sent now (the pipeline has room, the schedule says so, a ticket is left)
  // and writes everything not yet written in one gather write.
  void pump() {
    if (state_ != state::open) return;
    const auto now = clock_type::now();
    bool wait_for_schedule = false;
    while (size_ < ring_.size()) {
      auto scheduled = now;
      if (s_.open_loop) {
        if (next_send_ > now) {
          wait_for_schedule = true;
          break;
        }
        scheduled = next_send_;
      }
      bool counted = false;
      if (s_.requests_mode && now >= s_.measure_start) {
        if (!s_.take_ticket()) break;
        counted = true;
      }
      push({scheduled, now, pick_kind(), counted});
      if (s_.open_loop) next_send_ += interval_;
    }
    if (wait_for_schedule && !timer_armed_) arm_timer();
    write_pending(now);
  }

  void arm_timer() {
    timer_armed_ = true;
    timer_.expires_at(next_send_);
    timer_.async_wait([this](const error_code&) {
      timer_armed_ = false;
      pump();
    });
  }

  void write_pending(clock_type::time_point now) {
    if (writing_ || sent_ == size_) return;
    writing_ = true;
    const std::size_t first = sent_;
    const std::size_t n = size_ - sent_;
    sent_ = size_;  // a response can come back before the write handler runs: mark them sent now
    auto done = [this, e = epoch_](const error_code& ec, std::size_t) {
      if (e != epoch_) return;
      writing_ = false;
      if (ec) {
        fail(classify(ec));
        return;
      }
      pump();
    };
    if (n == 1) {
      auto& f = ring_[(head_ + first) % ring_.size()];
      f.sent = now;
      net::async_write(socket_, net::buffer(s_.requests[static_cast<std::size_t>(f.kind)]), std::move(done));
      return;
    }
    gather_.clear();
    for (std::size_t i = first; i < first + n; ++i) {
      auto& f = ring_[(head_ + i) % ring_.size()];
      f.sent = now;
      gather_.push_back(net::buffer(s_.requests[static_cast<std::size_t>(f.kind)]));
    }
    net::async_write(socket_, gather_, std::move(done));
  }

  void read() {
    socket_.async_read_some(buffer_.prepare(read_chunk),
                            [this, e = epoch_](const error_code& ec, std::size_t n) {
                              if (e != epoch_) return;
                              on_read(ec, n);
                            });
  }

  response_parser& new_parser() {
    response_parser& p = parser_.emplace();
    p.eager(true);
    reset_body_sink(p);
    return p;
  }

  void reset_body_sink(response_parser& p) noexcept {
    // Bodies are parsed (so framing is checked) and discarded into the thread's scratch area, which
    // all its connections share: what lands there is never read.
    p.get().body().data = body_sink_.data();
    p.get().body().size = body_sink_.size();
  }

  void on_read(const error_code& ec, std::size_t n) {
    if (ec) {
      if (ec == net::error::eof && parser_ && parser_->got_some()) {
        // A response delimited by the end of the connection (no Content-Length) is complete now.
        error_code pec;
        parser_->put_eof(pec);
        if (!pec && parser_->is_done() && !on_response(parser_->get().result_int(), false)) return;
      }
      if (ec == net::error::eof && sent_ == 0) {
        restart();  // an idle keep-alive connection closed by the server: not an error
        return;
      }
      fail(classify(ec));
      return;
    }
    buffer_.commit(n);
    while (buffer_.size() > 0) {
      // A reference for this turn only: on_response below ends the parser's life.
      response_parser& parser = parser_ ? *parser_ : new_parser();
      error_code pec;
      const std::size_t used = parser.put(buffer_.data(), pec);
      buffer_.consume(used);
      if (pec == http::error::need_buffer) {
        reset_body_sink(parser);
        continue;
      }
      if (pec == http::error::need_more) break;
      if (pec) {
        fail(transport_error::bad_response);
        return;
      }
      if (parser.is_done() && !on_response(parser.get().result_int(), parser.keep_alive())) return;
    }
    pump();
    read();
  }

  // A complete response with this status. Returns false when the connection was closed (the caller
  // must stop touching it).
  bool on_response(unsigned status, bool keep_alive) {
    parser_.reset();
    if (sent_ == 0) {
      fail(transport_error::bad_response);
      return false;
    }
    const in_flight f = pop();
    const auto now = clock_type::now();
    const bool counted = s_.requests_mode ? f.counted : (now >= s_.measure_start && now < s_.end);
    if (counted) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - f.scheduled).count();
      st_.record(f.kind, status, static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)), now);
    }
    if (f.counted) s_.complete_ticket(now);
    if (!keep_alive) {
      restart();  // requests still queued are written again on the new connection
      return false;
    }
    return true;
  }

  void close() {
    ++epoch_;  // handlers of the old socket see a stale epoch and do nothing
    error_code ignored;
    socket_.close(ignored);
    writing_ = false;
    parser_.reset();
    buffer_.clear();
    sent_ = 0;
  }

  // Closes and reconnects at once, keeping queued requests (they were never answered).
  void restart() {
    close();
    connect();
  }

  // A transport failure: the requests written on this socket are lost (one error each, or one for
  // the event when none was outstanding); those not yet written wait for the next connection.
  void fail(transport_error e) {
    const auto now = clock_type::now();
    const bool counting = s_.requests_mode || (now >= s_.measure_start && now < s_.end);
    std::uint64_t lost = 0;
    while (sent_ > 0) {
      const in_flight f = pop();
      ++lost;
      if (f.counted) s_.complete_ticket(now);
    }
    if (counting) {
      const auto n = std::max<std::uint64_t>(lost, 1);
      st_.r.errors[static_cast<std::size_t>(e)] += n;
      st_.second_of(now).transport_errors += n;
    }
    restart();
  }

  void connect_failed(transport_error e) {
    close();
    const auto now = clock_type::now();
    if (s_.requests_mode) {
      // Each failed attempt uses up one request, so a run against a dead server still ends.
      bool charged = s_.take_ticket();
      if (!charged) {
        for (std::size_t i = 0; i < size_ && !charged; ++i) {
          if (ring_[(head_ + i) % ring_.size()].counted) {
            // Drop the queued counted request at i, keeping the order of the others.
            for (std::size_t j = i; j + 1 < size_; ++j) {
              ring_[(head_ + j) % ring_.size()] = ring_[(head_ + j + 1) % ring_.size()];
            }
            --size_;
            charged = true;
          }
        }
        if (!charged) {
          state_ = state::done;  // nothing left to send from here
          return;
        }
      }
      st_.r.errors[static_cast<std::size_t>(e)] += 1;
      st_.second_of(now).transport_errors += 1;
      s_.complete_ticket(now);
    } else if (now >= s_.measure_start && now < s_.end) {
      st_.r.errors[static_cast<std::size_t>(e)] += 1;
      st_.second_of(now).transport_errors += 1;
    }
    state_ = state::backoff;
    retry_at_ = now + backoff_;
    backoff_ = std::min<std::chrono::nanoseconds>(backoff_ * 2, max_backoff);
  }

  shared_state& s_;
  thread_stats& st_;
  std::vector<char>& body_sink_;
  tcp::socket socket_;
  net::steady_timer timer_;  // the open-loop schedule
  beast::flat_buffer buffer_;
  std::optional<response_parser> parser_;
  std::vector<in_flight> ring_;  // capacity: --pipeline
  std::size_t head_ = 0;
  std::size_t size_ = 0;  // queued, written or not
  std::size_t sent_ = 0;  // of those, written on the current socket (always the oldest)
  std::vector<net::const_buffer> gather_;
  std::uint64_t epoch_ = 0;
  state state_ = state::connecting;
  bool writing_ = false;
  bool timer_armed_ = false;
  bool connected_before_ = false;
  clock_type::time_point connect_started_;
  clock_type::time_point retry_at_;
  std::chrono::nanoseconds backoff_ = first_backoff;
  clock_type::time_point next_send_;
  std::chrono::nanoseconds interval_{0};
  std::uint64_t rng_;
  std::size_t index_;
};

class worker {
 public:
  worker(shared_state& s, bool per_kind_latency) : s_(s), sweep_timer_(ioc_), end_timer_(ioc_) {
    stats_.per_kind_latency = per_kind_latency;
    // A second more than the window: the last response may land just past its end.
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(s.cfg.duration).count();
    stats_.r.per_second.reserve(static_cast<std::size_t>(seconds) + 1);
  }

  void add_connection(std::size_t index) {
    connections_.push_back(std::make_unique<connection>(ioc_, s_, stats_, body_sink_, index));
  }

  net::io_context& context() noexcept { return ioc_; }
  thread_stats& stats() noexcept { return stats_; }

  void run() {
    stats_.origin = s_.measure_start;
    for (auto& c : connections_) c->connect();
    if (s_.end != clock_type::time_point::max()) {
      end_timer_.expires_at(s_.end);
      end_timer_.async_wait([this](const error_code& ec) {
        if (!ec) ioc_.stop();
      });
    }
    sweep();
    ioc_.run();
    stats_.publish();
  }

 private:
  void sweep() {
    const auto now = clock_type::now();
    for (auto& c : connections_) c->sweep(now);
    stats_.publish();
    const auto tick = std::clamp<std::chrono::nanoseconds>(s_.cfg.timeout / 4, std::chrono::milliseconds{1},
                                                           std::chrono::milliseconds{100});
    sweep_timer_.expires_at(now + tick);
    sweep_timer_.async_wait([this](const error_code& ec) {
      if (!ec) sweep();
    });
  }

  shared_state& s_;
  net::io_context ioc_{1};  // one thread runs it: let Asio skip cross-thread work
  thread_stats stats_;
  std::vector<char> body_sink_ = std::vector<char>(std::size_t{64} * 1024);
  net::steady_timer sweep_timer_;
  net::steady_timer end_timer_;
  std::vector<std::unique_ptr<connection>> connections_;  // last: sockets go before the context
};

}  // namespace

std::array<std::string, request_kind_count> serialize_requests(const load_config& cfg) {
  // The key of the API's own endpoint travels in the query, as its clients send it; a gateway's
  // check carries it in Authorization, as nginx or Envoy pass it on.
  auto make = [&](std::string_view verb, std::string_view default_path, const std::string& key,
                  bool key_in_query) {
    std::string target = cfg.path.empty() ? std::string(default_path) : cfg.path;
    if (key_in_query) {
      target += target.find('?') == std::string::npos ? "?token=" : "&token=";
      target += percent_encode(key);
    }
    http::request<http::string_body> req;
    req.version(11);
    req.method_string(cfg.method.empty() ? verb : std::string_view(cfg.method));
    req.target(target);
    req.set(http::field::host, cfg.host_header);
    req.set(http::field::user_agent, "tokend-bench");
    if (!key_in_query) req.set(http::field::authorization, "Bearer " + key);
    for (const auto& line : cfg.headers) {
      const auto colon = line.find(':');
      const auto name = line.substr(0, colon);
      auto value = std::string_view(line).substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      // Host and Authorization replace ours; any other header is added, repeated if given twice.
      if (beast::iequals(name, "host") || beast::iequals(name, "authorization")) {
        req.set(name, value);
      } else {
        req.insert(name, value);
      }
    }
    if (!cfg.body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = cfg.body;
    }
    return req;
  };
  std::array<std::string, request_kind_count> out;
  auto create = make("POST", "/api/v2/tokens", cfg.create_token.empty() ? cfg.token : cfg.create_token, true);
  if (cfg.body.empty()) {
    create.set(http::field::content_type, "application/json");
    create.body() = R"({"type":"admin","description":"bench"})";
  }
  out[static_cast<std::size_t>(request_kind::create)] = serialize(create);
  auto list = make("GET", "/api/v2/tokens", cfg.token, true);
  out[static_cast<std::size_t>(request_kind::list)] = serialize(list);
  auto authfail = make("GET", "/api/v2/tokens", authfail_key(), true);
  out[static_cast<std::size_t>(request_kind::authfail)] = serialize(authfail);
  auto verify = make("GET", "/verify", cfg.token, false);
  out[static_cast<std::size_t>(request_kind::verify)] = serialize(verify);
  auto verify_fail = make("GET", "/verify", authfail_key(), false);
  out[static_cast<std::size_t>(request_kind::verify_fail)] = serialize(verify_fail);
  return out;
}

std::optional<std::string> resolve_target(load_config& cfg) {
  error_code ec;
  net::ip::make_address(cfg.address, ec);
  if (!ec) return std::nullopt;  // already an address
  net::io_context ioc{1};
  tcp::resolver resolver(ioc);
  const auto results =
      resolver.resolve(cfg.address, std::to_string(cfg.port), tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return "cannot resolve " + cfg.address + ": " + (ec ? ec.message() : std::string("no address"));
  }
  cfg.address = results.begin()->endpoint().address().to_string();
  return std::nullopt;
}

std::optional<std::string> probe_connect(const load_config& cfg) {
  net::io_context ioc{1};
  tcp::socket socket(ioc);
  error_code result = net::error::timed_out;
  error_code parse_ec;
  const auto address = net::ip::make_address(cfg.address, parse_ec);
  if (parse_ec) return "bad address " + cfg.address;
  socket.async_connect(tcp::endpoint(address, cfg.port), [&](const error_code& ec) { result = ec; });
  ioc.run_for(cfg.timeout);
  if (!result) return std::nullopt;
  std::string where = cfg.host_header;
  return "cannot connect to " + where + ": " + result.message();
}

load_result run_load(const load_config& cfg, const std::function<void(const load_progress&)>& on_progress) {
  shared_state s(cfg);
  const std::size_t threads = std::max<std::size_t>(1, std::min(cfg.threads, cfg.connections));
  const bool per_kind = std::count_if(cfg.mix.begin(), cfg.mix.end(), [](unsigned w) { return w > 0; }) > 1;

  std::vector<std::unique_ptr<worker>> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<worker>(s, per_kind));
    s.contexts.push_back(&workers.back()->context());
  }

  s.start = clock_type::now();
  s.measure_start = s.start + cfg.warmup;
  if (cfg.duration.count() > 0) s.end = s.measure_start + cfg.duration;
  for (std::size_t i = 0; i < cfg.connections; ++i) workers[i % threads]->add_connection(i);

  std::mutex m;
  std::condition_variable cv;
  std::size_t finished = 0;
  std::vector<std::thread> pool;
  pool.reserve(workers.size());
  for (auto& w : workers) {
    pool.emplace_back([&, wp = w.get()] {
      wp->run();
      std::lock_guard lock(m);
      ++finished;
      cv.notify_all();
    });
  }

  auto next_tick = s.start + std::chrono::seconds{1};
  {
    std::unique_lock lock(m);
    while (!cv.wait_until(lock, next_tick, [&] { return finished == threads; })) {
      if (on_progress) {
        load_progress p;
        const auto now = clock_type::now();
        p.since_start = now - s.start;
        p.warming_up = now < s.measure_start;
        for (auto& w : workers) {
          p.responses += w->stats().live_responses.load(std::memory_order_relaxed);
          p.successes += w->stats().live_successes.load(std::memory_order_relaxed);
          p.errors += w->stats().live_errors.load(std::memory_order_relaxed);
        }
        lock.unlock();
        on_progress(p);
        lock.lock();
      }
      next_tick += std::chrono::seconds{1};
    }
  }
  for (auto& t : pool) t.join();
  const auto stopped = clock_type::now();

  load_result out;
  for (auto& w : workers) {
    const load_result& r = w->stats().r;
    out.responses += r.responses;
    out.successes += r.successes;
    out.latency.merge(r.latency);
    for (std::size_t k = 0; k < request_kind_count; ++k) {
      out.by_kind[k].responses += r.by_kind[k].responses;
      out.by_kind[k].successes += r.by_kind[k].successes;
      out.by_kind[k].latency.merge(r.by_kind[k].latency);
    }
    for (std::size_t i = 0; i < out.status.size(); ++i) out.status[i] += r.status[i];
    for (std::size_t i = 0; i < out.errors.size(); ++i) out.errors[i] += r.errors[i];
    out.reconnects += r.reconnects;
    out.merge_seconds(r.per_second);
  }
  out.ever_connected = s.connected_once.load();
  clock_type::time_point window_end = std::min(stopped, s.end);
  if (const auto f = s.finished_at.load(std::memory_order_acquire); f != 0) {
    window_end = clock_type::time_point{clock_type::duration{f}};
  }
  out.elapsed = std::max(std::chrono::nanoseconds{0}, window_end - s.measure_start);
  return out;
}

}  // namespace tokend::bench
