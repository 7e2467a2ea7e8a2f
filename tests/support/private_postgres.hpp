// A PostgreSQL server of the test's own (scripts/test-postgres), for tests that stop or restart
// it: the shared one (support/postgres.hpp) serves other tests running in parallel.
#pragma once

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#ifndef TOKEND_SOURCE_DIR
#error "private_postgres needs TOKEND_SOURCE_DIR (the repository root) to find scripts/test-postgres"
#endif

namespace tokend::test {

class private_postgres {
 public:
  // Not in a test's sandbox: as root the server runs as `postgres`, which must reach its
  // directory, and a sandbox is private to this user.
  private_postgres() : dir_("tokend-pg") {
    url_ = run("start");
    while (!url_.empty() && url_.back() == '\n') url_.pop_back();
    if (url_.empty()) throw std::runtime_error("scripts/test-postgres start printed no URL");
  }
  ~private_postgres() {
    try {
      (void)run("stop");
    } catch (...) {
    }
  }
  private_postgres(const private_postgres&) = delete;
  private_postgres& operator=(const private_postgres&) = delete;

  [[nodiscard]] const std::string& url() const { return url_; }
  void restart() { (void)run("restart"); }      // pg_ctl restart -m fast
  void stop_immediate() { (void)run("stop"); }  // pg_ctl stop -m immediate (a crash)
  void stop_fast() { (void)run("stop-fast"); }  // pg_ctl stop -m fast (an orderly stop)
  void start_again() { (void)run("start-again"); }

 private:
  std::string run(const std::string& command) {
    // The script's output stays in the server's directory (removed with it).
    process p({"/bin/bash", TOKEND_SOURCE_DIR "/scripts/test-postgres", command, dir_.path().string()},
              environment_without(""), dir_.path() / ("cmd-" + command + ".out"),
              dir_.path() / ("cmd-" + command + ".err"));
    const auto status = p.wait_exit(std::chrono::seconds(90));
    if (!status || !status->success()) {
      throw std::runtime_error("scripts/test-postgres " + command + " failed: " + p.stderr_text());
    }
    return p.stdout_text();
  }

  temp_dir dir_;  // removed after the server has stopped
  std::string url_;
};

}  // namespace tokend::test
