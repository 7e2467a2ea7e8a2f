// tokend: `serve` (default), `keygen`, `token ...` (the operator client), `--help`, `--help-markdown`.
#include "core/key.hpp"
#include "server/app.hpp"
#include "server/bootstrap.hpp"
#include "server/config.hpp"
#include "server/config_flags.hpp"
#include "server/data_dir.hpp"
#include "server/fd_limits.hpp"
#include "server/log.hpp"
#include "server/token_cli.hpp"
#include "storage/faulty_store.hpp"
#include "storage/postgres_store.hpp"
#include "storage/rocksdb_store.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace tokend;

std::unique_ptr<storage::token_store> open_store(const server::config& cfg,
                                                 const server::descriptor_plan& fds) {
  if (cfg.store == server::store_kind::postgres) {
    storage::postgres_options options;
    options.conninfo = cfg.postgres_url;
    options.max_queue = cfg.write_queue;
    options.schema = cfg.postgres_schema;
    options.connections = cfg.postgres_connections;
    options.revocation_poll = cfg.revocation_poll;
    options.log = [](bool error, std::string_view message) {
      const auto level = error ? server::log::level::error : server::log::level::warn;
      server::log::write(level, "postgres", {{"detail", message}});
    };
    return storage::open_postgres_store(options);
  }
  storage::rocksdb_options options;
  options.data_dir = cfg.data_dir;
  options.sync = cfg.sync;
  options.max_queue = cfg.write_queue;
  options.max_open_files = fds.rocksdb_max_open_files;
  options.log = [](bool error, std::string_view message) {
    server::log::write(error ? server::log::level::error : server::log::level::warn, "rocksdb",
                       {{"detail", message}});
  };
  return storage::open_rocksdb_store(options);
}

int serve(const std::vector<std::string>& args) {
  const auto env = server::process_environment();
  server::config cfg;
  try {
    cfg = server::parse_config(args, env);
  } catch (const server::config_error& e) {
    std::cerr << "tokend: " << e.what() << "\n";
    return 2;
  }
  server::log::set_level(cfg.log_level);
  // The whole configuration, for "what is it running with?"; it holds no secret (the bootstrap key
  // is read from the environment by bootstrap() and never kept here; the PostgreSQL URL, which may
  // hold a password, is left out).
  server::log::debug("configuration",
                     {{"listen", cfg.listen.host + ":" + std::to_string(cfg.listen.port)},
                      {"admin_listen", cfg.admin_listen.host + ":" + std::to_string(cfg.admin_listen.port)},
                      {"data_dir", cfg.data_dir},
                      {"store", cfg.store == server::store_kind::postgres ? "postgres" : "rocksdb"},
                      {"threads", cfg.threads},
                      {"cache_capacity", cfg.cache_capacity},
                      {"list_cache_tokens", cfg.list_cache_tokens},
                      {"max_body_bytes", cfg.max_body_bytes},
                      {"max_header_bytes", cfg.max_header_bytes},
                      {"sync", cfg.sync},
                      {"write_queue", cfg.write_queue},
                      {"idle_timeout_seconds", cfg.idle_timeout.count() / 1000.0},
                      {"request_timeout_seconds", cfg.request_timeout.count() / 1000.0},
                      {"drain_timeout_seconds", cfg.drain_timeout.count() / 1000.0},
                      {"log_level", server::log::level_name(cfg.log_level)},
                      {"access_log", cfg.access_log}});
  try {
    // Before anything opens a file: the caps must fit the descriptors there are (fd_limits.hpp).
    const auto raised = server::raise_descriptor_limit();
    const auto fds = server::plan_descriptors(raised.after, cfg);
    const std::size_t configured_max_connections = cfg.max_connections;
    cfg.max_connections = fds.max_connections;
    cfg.admin_max_connections = fds.admin_max_connections;
    boost::json::object limits;
    limits["max_connections"] = fds.max_connections;
    limits["configured_max_connections"] = configured_max_connections;
    limits["admin_max_connections"] = fds.admin_max_connections;
    limits["fd_limit"] = fds.limit;
    limits["fd_limit_at_start"] = raised.before;
    limits["reserved_descriptors"] = fds.reserved;
    limits["rocksdb_max_open_files"] = fds.rocksdb_max_open_files;
    limits["clamped_to_fd_limit"] = fds.clamped;
    limits["max_response_bytes_in_flight"] = cfg.max_response_bytes_in_flight;
    server::log::info("connection limits", std::move(limits));
    if (cfg.store == server::store_kind::rocksdb) server::prepare_data_dir(cfg.data_dir);
    std::unique_ptr<storage::token_store> store = open_store(cfg, fds);
    if (!cfg.test_fault_file.empty()) {
      store = storage::make_faulty_store(std::move(store), cfg.test_fault_file);
      server::log::warn("fault injection enabled (testing only)", {{"control_file", cfg.test_fault_file}});
    }
    server::bootstrap(*store, cfg, env);
    server::app app(cfg, std::move(store));
    app.start(true);
    server::log::info("tokend listening",
                      {{"api_port", app.api_port()},
                       {"admin_port", app.admin_port()},
                       {"threads", cfg.threads},
                       {"data_dir", cfg.data_dir},
                       {"store", cfg.store == server::store_kind::postgres ? "postgres" : "rocksdb"},
                       {"sync", cfg.sync}});
    app.wait();
    return 0;
  } catch (const server::config_error& e) {
    std::cerr << "tokend: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    server::log::error("start-up failed", {{"error", e.what()}});
    std::cerr << "tokend: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Everything tokend or RocksDB creates (the store, the admin key) is for tokend's user alone.
  ::umask(077);
  std::vector<std::string> args(argv + 1, argv + argc);
  // Before the global --help: `tokend token --help` is the client's own help.
  if (!args.empty() && args.front() == "token") {
    return server::cli::run({args.begin() + 1, args.end()}, server::process_environment(), std::cout,
                            std::cerr);
  }
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << server::usage_text();
      return 0;
    }
    if (a == "--help-markdown") {
      std::cout << server::flags_markdown();
      return 0;
    }
  }
  if (!args.empty() && args.front() == "keygen") {
    if (args.size() > 1) {
      std::cerr << "tokend: keygen takes no arguments\n";
      return 2;
    }
    std::cout << core::generate_key() << "\n";
    return 0;
  }
  if (!args.empty() && args.front() == "help") {
    std::cout << server::usage_text();
    return 0;
  }
  if (!args.empty() && args.front() == "serve")
    args.erase(args.begin());
  else if (!args.empty() && !args.front().starts_with("-")) {
    std::cerr << "tokend: unknown command '" << args.front() << "' (see tokend --help)\n";
    return 2;
  }
  return serve(args);
}
