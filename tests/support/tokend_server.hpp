// The real `tokend` binary for end-to-end tests: a sandbox directory (data dir, control files,
// captured output) and a running `tokend serve` on kernel-chosen ports read from its log line.
#pragma once

#include "core/key.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef TOKEND_BINARY
#error "TOKEND_BINARY must name the tokend executable"
#endif

namespace tokend::test {

// A fresh directory per test under $TMPDIR (or /tmp), removed at the end, with logs/ for output
// and a control file for the fault-injecting store.
class sandbox {
 public:
  explicit sandbox(const std::filesystem::path& base = {}) : dir_("tokend-e2e", base) {
    std::filesystem::create_directories(root() / "logs");
  }

  [[nodiscard]] const std::filesystem::path& root() const { return dir_.path(); }
  [[nodiscard]] std::filesystem::path data_dir() const { return root() / "data"; }
  [[nodiscard]] std::filesystem::path fault_file() const { return root() / "fault"; }

  // Fresh stdout/stderr file names for one more process.
  std::pair<std::filesystem::path, std::filesystem::path> log_files(const std::string& name) {
    const std::string stem = name + "-" + std::to_string(++processes_);
    return {root() / "logs" / (stem + ".out"), root() / "logs" / (stem + ".err")};
  }

  // Everything the processes of this test wrote on stdout and stderr, except `tokend keygen` run
  // as "keygen" (printing a key is its job).
  [[nodiscard]] std::string all_output() const {
    std::string out;
    for (const auto& entry : std::filesystem::directory_iterator(root() / "logs")) {
      if (entry.path().filename().string().starts_with("keygen")) continue;
      out += read_file(entry.path());
    }
    return out;
  }

  // Replaced atomically (rename), so the store never reads a half-written control file.
  void set_fault(const std::string& mode) const {
    const std::filesystem::path tmp = root() / "fault.tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << mode;
    }
    std::filesystem::rename(tmp, fault_file());
  }

 private:
  temp_dir dir_;
  int processes_ = 0;
};

// The test's environment without any TOKEND_ variable, plus `extra`.
inline std::vector<std::string> tokend_env(const std::vector<std::string>& extra) {
  auto env = environment_without("TOKEND_");
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

inline std::vector<std::string> tokend_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv{TOKEND_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// A command that must end by itself (keygen, a failing start) within `timeout`.
struct finished {
  exit_status status;
  std::string out;
  std::string err;
};
inline finished run_tokend_to_end(sandbox& box, const std::string& name, const std::vector<std::string>& args,
                                  const std::vector<std::string>& env_extra = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto [out, err] = box.log_files(name);
  process p(tokend_argv(args), tokend_env(env_extra), out, err);
  const auto status = p.wait_exit(timeout);
  if (!status)
    throw std::runtime_error("tokend " + name + " did not exit in time; stderr: " + p.stderr_text());
  return {*status, p.stdout_text(), p.stderr_text()};
}

// A fresh key from `tokend keygen` (the one line it prints).
inline std::string keygen(sandbox& box) {
  const auto r = run_tokend_to_end(box, "keygen", {"keygen"});
  if (!r.status.success() || r.out.size() != core::key_hex_length + 1) {
    throw std::runtime_error("tokend keygen failed: " + r.status.describe() + " " + r.err);
  }
  return r.out.substr(0, core::key_hex_length);
}

// `tokend serve` with both listeners on port 0 of `host` (admin on `admin_host`), data in the
// sandbox; the constructor returns once the "tokend listening" line names both ports.
class tokend_server {
 public:
  struct options {
    std::vector<std::string> args;  // more flags
    std::vector<std::string> env;   // more NAME=VALUE
    std::string host = "127.0.0.1";
    std::string admin_host = "127.0.0.1";
    std::string data_dir;  // empty: the sandbox's
    std::chrono::milliseconds startup_deadline{20'000};
    child_limits limits;  // e.g. a low descriptor limit
  };

  explicit tokend_server(sandbox& box) : tokend_server(box, options{}) {}
  // More flags and NAME=VALUE variables, everything else as options{} has it.
  tokend_server(sandbox& box, std::vector<std::string> args, std::vector<std::string> env)
      : tokend_server(box, with(std::move(args), std::move(env))) {}
  tokend_server(sandbox& box, options o) {
    const std::string data_dir = o.data_dir.empty() ? box.data_dir().string() : o.data_dir;
    std::vector<std::string> args{"--listen",   o.host + ":0", "--admin-listen", o.admin_host + ":0",
                                  "--data-dir", data_dir,      "--threads",      "2"};
    args.insert(args.end(), o.args.begin(), o.args.end());
    auto [out, err] = box.log_files("serve");
    proc_ = std::make_unique<process>(tokend_argv(args), tokend_env(o.env), out, err, o.limits);
    wait_listening(o.startup_deadline);
  }

  [[nodiscard]] std::uint16_t api_port() const { return api_port_; }
  [[nodiscard]] std::uint16_t admin_port() const { return admin_port_; }
  process& proc() { return *proc_; }

  // `sig` (SIGTERM by default), then the exit status within `timeout` (nullopt: still running).
  std::optional<exit_status> terminate(std::chrono::milliseconds timeout, int sig = SIGTERM) {
    proc_->kill(sig);
    return proc_->wait_exit(timeout);
  }

 private:
  static options with(std::vector<std::string> args, std::vector<std::string> env) {
    options o;
    o.args = std::move(args);
    o.env = std::move(env);
    return o;
  }

  void wait_listening(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      std::istringstream lines(proc_->stdout_text());
      for (std::string line; std::getline(lines, line);) {
        if (line.find("\"tokend listening\"") == std::string::npos) continue;
        boost::system::error_code ec;
        const boost::json::value v = boost::json::parse(line, ec);
        if (ec || !v.is_object()) continue;
        const auto* msg = v.as_object().if_contains("msg");
        const auto* api = v.as_object().if_contains("api_port");
        const auto* admin = v.as_object().if_contains("admin_port");
        if (!msg || !msg->is_string() || msg->as_string() != "tokend listening" || !api || !admin) continue;
        api_port_ = static_cast<std::uint16_t>(api->to_number<std::int64_t>());
        admin_port_ = static_cast<std::uint16_t>(admin->to_number<std::int64_t>());
        if (api_port_ == 0 || admin_port_ == 0) throw std::runtime_error("tokend reported port 0: " + line);
        return;
      }
      if (auto status = proc_->poll()) {
        throw std::runtime_error("tokend exited during start-up (" + status->describe() +
                                 "); stderr: " + proc_->stderr_text());
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw std::runtime_error("tokend did not log 'tokend listening' in time; stdout: " +
                                 proc_->stdout_text());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<process> proc_;
  std::uint16_t api_port_ = 0;
  std::uint16_t admin_port_ = 0;
};

}  // namespace tokend::test
