// A tokend::server::app inside the test process, for socket-level tests: both listeners on
// 127.0.0.1:0 over a store the test built (records stored through it beforehand), stopped and
// waited for by the destructor.
#pragma once

#include "core/token.hpp"
#include "server/app.hpp"
#include "server/config.hpp"
#include "storage/token_store.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <utility>

namespace tokend::test {

// Stores `record` straight through `store`; fails the test unless the store accepts it in `limit`.
inline void store_record(storage::token_store& store, core::token_record record,
                         std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  // Shared so that a handler arriving after the deadline still has a live promise.
  auto done = std::make_shared<std::promise<boost::system::result<std::uint64_t>>>();
  auto result = done->get_future();
  store.async_create(std::move(record),
                     [done](boost::system::result<std::uint64_t> id) { done->set_value(std::move(id)); });
  BOOST_REQUIRE_MESSAGE(result.wait_for(limit) == std::future_status::ready, "store did not answer");
  const auto id = result.get();
  BOOST_REQUIRE_MESSAGE(id.has_value(), "store refused the record: " << id.error().message());
}

class in_process_app {
 public:
  // `cfg` as the test set it, but listening on 127.0.0.1:0 (both listeners), on two threads, with
  // its data under `data_dir`.
  in_process_app(server::config cfg, const std::filesystem::path& data_dir,
                 std::unique_ptr<storage::token_store> store, server::app_test_hooks hooks = {}) {
    cfg.listen = server::endpoint_spec{"127.0.0.1", 0};
    cfg.admin_listen = server::endpoint_spec{"127.0.0.1", 0};
    cfg.data_dir = data_dir.string();
    cfg.threads = 2;
    app_ = std::make_unique<server::app>(cfg, std::move(store));
    app_->set_test_hooks(std::move(hooks));
    app_->start(false);
    BOOST_REQUIRE(app_->api_port() != 0);
    BOOST_REQUIRE(app_->admin_port() != 0);
  }
  ~in_process_app() { stop(); }
  in_process_app(const in_process_app&) = delete;
  in_process_app& operator=(const in_process_app&) = delete;

  // Stops the app and waits for it; once only.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    app_->request_stop();
    app_->wait();
  }

  [[nodiscard]] server::app& app() { return *app_; }
  [[nodiscard]] const server::app& app() const { return *app_; }
  [[nodiscard]] std::uint16_t api_port() const { return app_->api_port(); }
  [[nodiscard]] std::uint16_t admin_port() const { return app_->admin_port(); }

 private:
  std::unique_ptr<server::app> app_;
  bool stopped_ = false;
};

}  // namespace tokend::test
