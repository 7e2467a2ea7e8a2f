// A real nginx in front of tokend for end-to-end tests of what a gateway sees: started in the
// foreground on 127.0.0.1 with a configuration of the test's own in a private directory (its pid
// file, logs and temporary files there too, nothing under /etc or /var), stopped by the destructor.
// The nginx binary is TOKEND_TEST_NGINX, or /usr/sbin/nginx (Debian's nginx-light, see scripts/deps);
// without one the test fails with the reason rather than skipping.
#pragma once

#include "support/process.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace tokend::test {

// A port on 127.0.0.1 that was free a moment ago (the kernel's choice), for a server that cannot
// be told to pick one itself and report it.
[[nodiscard]] inline std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("could not find a free port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

[[nodiscard]] inline std::string nginx_binary() {
  const char* configured = std::getenv("TOKEND_TEST_NGINX");
  const std::string path = configured && *configured ? configured : "/usr/sbin/nginx";
  if (::access(path.c_str(), X_OK) != 0) {
    throw std::runtime_error("nginx not found at " + path +
                             ": install nginx-light (scripts/deps does) or set TOKEND_TEST_NGINX");
  }
  return path;
}

class nginx_server {
 public:
  // `http_block` goes inside `http { }` (upstreams and servers); its server must listen on
  // 127.0.0.1:`port`, which start-up waits for.
  nginx_server(const std::filesystem::path& dir, const std::string& http_block, std::uint16_t port,
               std::chrono::milliseconds startup_deadline = std::chrono::seconds(10))
      : dir_(dir), port_(port) {
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    std::ofstream conf(dir_ / "nginx.conf", std::ios::trunc);
    // As root the workers would switch to `nobody`, who cannot enter the private directory.
    if (::geteuid() == 0) conf << "user root;\n";
    conf << "worker_processes 1;\n"
         << "error_log " << d << "/error.log warn;\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n"
         << "  access_log " << d << "/access.log;\n"
         << "  client_body_temp_path " << d << "/body;\n"
         << "  proxy_temp_path " << d << "/proxy;\n"
         << "  fastcgi_temp_path " << d << "/fastcgi;\n"
         << "  uwsgi_temp_path " << d << "/uwsgi;\n"
         << "  scgi_temp_path " << d << "/scgi;\n"
         << http_block << "\n}\n";
    conf.close();
    if (!conf) throw std::runtime_error("cannot write " + (dir_ / "nginx.conf").string());
    proc_ = std::make_unique<process>(
        std::vector<std::string>{nginx_binary(), "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf",
                                 "-g", "daemon off; pid " + d + "/nginx.pid;"},
        environment_without(""), dir_ / "nginx.out", dir_ / "nginx.err");
    wait_listening(startup_deadline);
  }

  ~nginx_server() {
    // SIGTERM is nginx's fast shutdown: the master stops its workers, then exits.
    if (proc_->running()) {
      proc_->kill(SIGTERM);
      (void)proc_->wait_exit(std::chrono::seconds(5));
    }
  }
  nginx_server(const nginx_server&) = delete;
  nginx_server& operator=(const nginx_server&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string error_log() const { return read_file(dir_ / "error.log") + proc_->stderr_text(); }
  [[nodiscard]] std::string access_log() const { return read_file(dir_ / "access.log"); }

 private:
  void wait_listening(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (auto status = proc_->poll()) {
        throw std::runtime_error("nginx exited during start-up (" + status->describe() + "): " + error_log());
      }
      if (port_open()) return;
      if (std::chrono::steady_clock::now() >= deadline) {
        throw std::runtime_error("nginx did not listen on 127.0.0.1:" + std::to_string(port_) +
                                 " in time: " + error_log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  [[nodiscard]] bool port_open() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  std::filesystem::path dir_;
  std::uint16_t port_;
  std::unique_ptr<process> proc_;
};

}  // namespace tokend::test
