// The PostgreSQL store's start-up: the schema script, then the pool and the revocation listener.
#include "storage/postgres_store_impl.hpp"

#include "storage/pg_text.hpp"
#include "storage/postgres_schema.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <openssl/rand.h>

#include <array>
#include <optional>
#include <stdexcept>

namespace tokend::storage {
namespace {

namespace net = boost::asio;

// Two processes starting together run the schema script one after the other.
constexpr const char* schema_lock = "7726150894436640359";

}  // namespace

void postgres_store::start() {
  thread_ = std::thread([this] { ioc_.run(); });
  auto init = std::make_shared<std::promise<std::string>>();
  auto initialized = init->get_future();
  net::co_spawn(ioc_, initialize(init), net::detached);
  if (initialized.wait_for(options_.start_timeout) != std::future_status::ready) {
    throw std::runtime_error("cannot open PostgreSQL store: no answer within the start-up timeout");
  }
  if (const std::string problem = initialized.get(); !problem.empty()) {
    throw std::runtime_error("cannot open PostgreSQL store: " + problem);
  }
  net::post(ioc_, [this] {
    // Counted here, on the storage thread, so that a shutdown before this point waits for none.
    running_ = workers_.size();
    listener_done_ = false;
    for (std::size_t i = 0; i < workers_.size(); ++i) net::co_spawn(ioc_, work(i), net::detached);
    net::co_spawn(ioc_, listen(), net::detached);
  });
  std::unique_lock lock(state_mutex_);
  const auto up = [this] { return connected_.load() > 0 && listening_.load(); };
  if (!state_cv_.wait_for(lock, options_.start_timeout, up)) {
    throw std::runtime_error(
        "cannot open PostgreSQL store: no pool connection or revocation listener "
        "within the start-up timeout");
  }
}

net::awaitable<void> postgres_store::initialize(std::shared_ptr<std::promise<std::string>> done) {
  if (!co_await init_conn_.connect(options_.conninfo, options_.connect_timeout)) {
    done->set_value("cannot connect: " + init_conn_.last_error());
    co_return;
  }
  const std::string schema = names_.quoted_schema();
  const std::string script = "BEGIN; SELECT pg_advisory_xact_lock(" + std::string(schema_lock) +
                             "); CREATE SCHEMA IF NOT EXISTS " + schema + "; SET LOCAL search_path TO " +
                             schema + ";\n" + std::string(postgres_schema_sql()) + "\nCOMMIT;";
  auto r = co_await init_conn_.exec(script);
  if (!r.ok()) {
    done->set_value("cannot create the schema: " + r.error);
    init_conn_.close();
    co_return;
  }
  // A fresh process has an empty cache: older revocations concern nothing it holds.
  r = co_await init_conn_.exec("SELECT coalesce(max(seq), 0) FROM " + names_.table("tokend_revocations"));
  std::uint64_t last_seq = 0;
  if (!r.ok() || r.rows() != 1 || !pg::parse_integer(r.cell(0, 0), last_seq)) {
    done->set_value("cannot read the revocations table: " + r.error);
    init_conn_.close();
    co_return;
  }
  if (std::string problem = co_await read_cursor_secret(); !problem.empty()) {
    done->set_value(std::move(problem));
    init_conn_.close();
    co_return;
  }
  listener_.start_after(last_seq);
  init_conn_.close();
  done->set_value({});
}

// Offers a fresh secret, which only the first process's offer stores, then reads the one stored.
// Why it failed, or empty.
net::awaitable<std::string> postgres_store::read_cursor_secret() {
  std::array<std::uint8_t, 32> offer{};
  if (RAND_bytes(offer.data(), static_cast<int>(offer.size())) != 1) co_return "no random bytes for a secret";
  const std::string table = names_.table("tokend_secrets");
  const auto r = co_await init_conn_.exec(
      "INSERT INTO " + table + " (cursor_secret) VALUES (decode('" + pg::bytea_text(offer).substr(2) +
      "', 'hex')) ON CONFLICT DO NOTHING; SELECT encode(cursor_secret, 'hex') FROM " + table);
  const auto stored = r.ok() && r.rows() == 1 ? pg::parse_digest_hex(r.cell(0, 0)) : std::nullopt;
  if (!stored) co_return "cannot read the cursor secret: " + r.error;
  cursor_secret_ = *stored;
  co_return std::string{};
}

}  // namespace tokend::storage
