// A child process for end-to-end tests: fork/execve with an explicit argv and environment, stdout
// and stderr captured in files, signals, and a deadline-bounded wait. The destructor SIGKILLs and
// reaps a child that is still running, so a failing test leaves no process behind.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace tokend::test {

// How a child ended: exit code, or the signal that killed it.
struct exit_status {
  bool exited = false;  // exit code valid
  int code = -1;
  bool signaled = false;  // signal valid
  int signal = 0;

  [[nodiscard]] bool success() const noexcept { return exited && code == 0; }
  [[nodiscard]] std::string describe() const {
    if (exited) return "exit code " + std::to_string(code);
    if (signaled) return std::string("signal ") + ::strsignal(signal);
    return "unknown";
  }
};

// The current environment as NAME=VALUE strings, minus variables whose name starts with `prefix`
// (e.g. "TOKEND_" so a developer's shell cannot leak configuration into a test).
inline std::vector<std::string> environment_without(const std::string& prefix) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    if (!prefix.empty() && entry.starts_with(prefix)) continue;
    out.push_back(entry);
  }
  return out;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Limits the child gets before exec (a test of behaviour under a low limit).
struct child_limits {
  std::optional<rlim_t> open_files;  // RLIMIT_NOFILE, soft and hard alike
};

class process {
 public:
  // Starts `argv[0]` (a path, not searched in PATH) with exactly `env`. stdout and stderr go to
  // the given files (created or truncated). Throws std::runtime_error when fork fails; a failed
  // execve shows as exit code 127.
  process(std::vector<std::string> argv, std::vector<std::string> env, std::filesystem::path stdout_path,
          std::filesystem::path stderr_path, child_limits limits = {})
      : stdout_path_(std::move(stdout_path)), stderr_path_(std::move(stderr_path)) {
    if (argv.empty()) throw std::invalid_argument("process: empty argv");
    // Everything the child needs is prepared before fork: after fork only async-signal-safe calls.
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string out = stdout_path_.string();
    const std::string err = stderr_path_.string();
    const pid_t parent = ::getpid();

    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
    if (pid_ == 0) {
      // If the test process dies (crash, ctest timeout), take the child with it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int in = ::open("/dev/null", O_RDONLY);
      if (o < 0 || e < 0 || in < 0) ::_exit(126);
      if (::dup2(in, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(126);
      // No inherited descriptors (the test's client sockets above all): a child holding a copy
      // would keep connections open that the test believes closed.
      ::close_range(3, ~0U, 0);
      if (limits.open_files) {
        const rlimit nofile{*limits.open_files, *limits.open_files};
        if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) ::_exit(126);
      }
      // The test process may block signals in its threads; the child starts with a clean mask.
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
  }

  ~process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }

  process(const process&) = delete;
  process& operator=(const process&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Safe from any thread while the child has not been reaped.
  bool kill(int sig) const noexcept { return ::kill(pid_, sig) == 0; }

  // The exit status once the child has ended, or nullopt if it still runs at `deadline`. Polls
  // waitpid(WNOHANG) with a short pause between polls. Call from one thread.
  std::optional<exit_status> wait_exit(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      if (auto s = poll()) return s;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::optional<exit_status> wait_exit(std::chrono::milliseconds timeout) {
    return wait_exit(std::chrono::steady_clock::now() + timeout);
  }

  // Non-blocking: the exit status if the child has ended.
  std::optional<exit_status> poll() {
    if (status_) return status_;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exit_status s;
      if (WIFEXITED(st)) {
        s.exited = true;
        s.code = WEXITSTATUS(st);
      } else if (WIFSIGNALED(st)) {
        s.signaled = true;
        s.signal = WTERMSIG(st);
      }
      status_ = s;
    }
    return status_;
  }

  [[nodiscard]] bool running() { return !poll().has_value(); }

  [[nodiscard]] std::string stdout_text() const { return read_file(stdout_path_); }
  [[nodiscard]] std::string stderr_text() const { return read_file(stderr_path_); }

 private:
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  pid_t pid_ = -1;
  std::optional<exit_status> status_;
};

}  // namespace tokend::test
