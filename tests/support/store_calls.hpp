// The token_store tests' common ground: calling a store's asynchronous operations and waiting
// for their handlers with a deadline, test records, and the backends every contract test runs on.
#pragma once

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"
#include "storage/memory_store.hpp"
#include "storage/postgres_store.hpp"
#include "storage/rocksdb_store.hpp"
#include "support/postgres.hpp"
#include "support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

namespace tokend::test::stores {

using namespace std::chrono_literals;
namespace core = tokend::core;
namespace storage = tokend::storage;
using boost::system::error_code;
using storage::token_store;

constexpr auto deadline = 10s;

[[nodiscard]] inline error_code err(core::errc e) { return core::make_error_code(e); }

[[nodiscard]] inline core::token_record make_record(core::user_id owner, int n) {
  const std::string key = core::generate_key();
  core::token_record r;
  r.digest = core::digest_key(key);
  r.display_prefix = key.substr(0, core::display_prefix_length);
  r.description = "token " + std::to_string(n) + " — clé ☃";
  r.type = "admin";
  // Decreasing timestamps: a list must follow creation order, not created_at.
  r.created_at = 2'000'000'000 - n;
  r.owner = owner;
  return r;
}

inline void check_same(const core::token_record& got, const core::token_record& want) {
  BOOST_CHECK(got.digest == want.digest);
  BOOST_CHECK_EQUAL(got.display_prefix, want.display_prefix);
  BOOST_CHECK_EQUAL(got.description, want.description);
  BOOST_CHECK_EQUAL(got.type, want.type);
  BOOST_CHECK_EQUAL(got.created_at, want.created_at);
  BOOST_CHECK_EQUAL(got.owner, want.owner);
}

// What a handler received, and on which thread it ran.
template <class Result>
struct outcome {
  Result value;
  std::thread::id thread;
};

// Starts an async operation; the future is fulfilled by its handler.
template <class Result, class Start>
[[nodiscard]] std::future<outcome<Result>> start(Start start_operation) {
  auto promise = std::make_shared<std::promise<outcome<Result>>>();
  auto future = promise->get_future();
  start_operation([promise](Result r) { promise->set_value({std::move(r), std::this_thread::get_id()}); });
  return future;
}

enum class where { storage_thread, any_thread };

// Waits (with a deadline) for an operation started by start(); by default also checks that the
// handler did not run on the caller's thread.
template <class Result>
[[nodiscard]] Result finish(std::future<outcome<Result>> future, where w = where::storage_thread,
                            std::chrono::seconds limit = deadline) {
  BOOST_REQUIRE(future.wait_for(limit) == std::future_status::ready);
  outcome<Result> o = future.get();
  if (w == where::storage_thread) BOOST_CHECK(o.thread != std::this_thread::get_id());
  return std::move(o.value);
}

using lookup_result = boost::system::result<std::optional<storage::key_info>>;
using list_result = boost::system::result<storage::list_page>;

// Only whether it failed: the id and the digest answered are checked by the tests of their own.
[[nodiscard]] inline std::future<outcome<error_code>> start_create(token_store& s,
                                                                   const core::token_record& r) {
  return start<error_code>([&](auto handler) {
    s.async_create(
        r, [handler](boost::system::result<std::uint64_t> id) { handler(id ? error_code{} : id.error()); });
  });
}

[[nodiscard]] inline std::future<outcome<error_code>> start_remove(token_store& s, core::user_id owner,
                                                                   const core::key_digest& d) {
  return start<error_code>([&](auto handler) {
    s.async_remove(storage::token_ref{owner, d}, [handler](boost::system::result<core::key_digest> gone) {
      handler(gone ? error_code{} : gone.error());
    });
  });
}

[[nodiscard]] inline std::future<outcome<lookup_result>> start_lookup(token_store& s,
                                                                      const core::key_digest& d) {
  return start<lookup_result>([&](auto handler) { s.async_lookup(d, std::move(handler)); });
}

[[nodiscard]] inline std::future<outcome<list_result>> start_list(token_store& s, core::user_id owner,
                                                                  std::size_t offset, std::size_t limit) {
  return start<list_result>([&](auto handler) { s.async_list(owner, offset, limit, std::move(handler)); });
}

[[nodiscard]] inline error_code create(token_store& s, const core::token_record& r,
                                       where w = where::storage_thread) {
  return finish(start_create(s, r), w);
}

[[nodiscard]] inline error_code remove(token_store& s, core::user_id owner, const core::key_digest& d,
                                       where w = where::storage_thread) {
  return finish(start_remove(s, owner, d), w);
}

// The owner, or nullopt; a lookup error fails the test.
[[nodiscard]] inline std::optional<core::user_id> lookup(token_store& s, const core::key_digest& d) {
  const lookup_result r = finish(start_lookup(s, d));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "lookup failed: " << r.error().message());
  if (!r->has_value()) return std::nullopt;
  return (*r)->owner;
}

[[nodiscard]] inline storage::list_page list(token_store& s, core::user_id owner, std::size_t offset,
                                             std::size_t limit) {
  list_result r = finish(start_list(s, owner, offset, limit));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "list failed: " << r.error().message());
  return std::move(*r);
}

[[nodiscard]] inline bool is_empty(token_store& s) {
  const auto r = s.empty();
  BOOST_REQUIRE(r.has_value());
  return *r;
}

[[nodiscard]] inline storage::rocksdb_options rocksdb_options_in(const temp_dir& dir) {
  storage::rocksdb_options o;
  o.data_dir = (dir.path() / "db").string();
  return o;
}

// Backends for the behavioural tests that every token_store must pass.
struct rocksdb_backend {
  static constexpr bool batches_writes = true;
  temp_dir dir;
  [[nodiscard]] std::unique_ptr<token_store> open() const {
    return storage::open_rocksdb_store(rocksdb_options_in(dir));
  }
};

struct memory_backend {
  static constexpr bool batches_writes = false;
  [[nodiscard]] static std::unique_ptr<token_store> open() { return storage::make_memory_store(); }
};

// A schema of its own on the test server (see support/postgres.hpp), so reopening sees the same data.
[[nodiscard]] inline storage::postgres_options postgres_options_for(const std::string& schema) {
  storage::postgres_options o;
  o.conninfo = tokend::test::postgres_url();
  o.schema = schema;
  o.connections = 2;
  o.revocation_poll = 100ms;
  o.start_timeout = 10s;
  return o;
}

struct postgres_backend {
  static constexpr bool batches_writes = true;
  std::string schema = tokend::test::fresh_postgres_schema();
  [[nodiscard]] std::unique_ptr<token_store> open() const {
    return storage::open_postgres_store(postgres_options_for(schema));
  }
};

using backends = std::tuple<rocksdb_backend, memory_backend, postgres_backend>;

}  // namespace tokend::test::stores
