// A real, small file system for disk-full tests: a tmpfs mounted in a mount namespace private to
// this test process (children such as tokend inherit it; nothing is visible outside, and the
// mounts vanish with the process). As root it needs only CAP_SYS_ADMIN; otherwise it first enters
// a user namespace of its own, which unprivileged users may do on most Linux systems. When neither
// is allowed (some container sandboxes), mount_tmpfs() says why and the caller skips.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace tokend::test {

namespace detail {

inline bool write_proc(const char* path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return out.good();
}

// Once per process: a private mount namespace (after a user namespace when not root). Must run
// before the process has threads when a user namespace is needed. Empty on success, else why not.
inline std::string enter_private_mount_namespace() {
  static const std::string result = [] {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (uid == 0) {
      if (::unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    } else {
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        return std::string("unshare(CLONE_NEWUSER|CLONE_NEWNS): ") + std::strerror(errno);
      }
      if (!write_proc("/proc/self/setgroups", "deny") ||
          !write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
          !write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1")) {
        return std::string("cannot write the user namespace's id maps");
      }
    }
    // Mount events must not propagate back to the parent namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return std::string("making / private: ") + std::strerror(errno);
    }
    return std::string();
  }();
  return result;
}

}  // namespace detail

// A tmpfs of `size` (mount's syntax, e.g. "128m") on a new directory under `parent`, read-only
// if asked. Unmounted and removed by the destructor.
class private_tmpfs {
 public:
  // nullopt and `why_not` set when this environment does not allow it.
  static std::optional<private_tmpfs> mount(const std::filesystem::path& parent, const std::string& size,
                                            bool read_only, std::string& why_not) {
    why_not = detail::enter_private_mount_namespace();
    if (!why_not.empty()) return std::nullopt;
    std::string dir = (parent / "tmpfs-XXXXXX").string();
    if (!::mkdtemp(dir.data())) {
      why_not = std::string("mkdtemp: ") + std::strerror(errno);
      return std::nullopt;
    }
    const unsigned long flags = MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0);
    const std::string options = "size=" + size + ",mode=0755";
    if (::mount("tokend-test", dir.c_str(), "tmpfs", flags, options.c_str()) != 0) {
      why_not = std::string("mount -t tmpfs: ") + std::strerror(errno);
      ::rmdir(dir.c_str());
      return std::nullopt;
    }
    return private_tmpfs(dir);
  }

  private_tmpfs(private_tmpfs&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  private_tmpfs& operator=(private_tmpfs&&) = delete;
  ~private_tmpfs() {
    if (path_.empty()) return;
    ::umount2(path_.c_str(), MNT_DETACH);
    ::rmdir(path_.c_str());
  }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  explicit private_tmpfs(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// Writes zeros to `file` until the file system refuses (ENOSPC) or `limit` bytes; returns the
// bytes written. In 4 KiB pieces at the end, so the last free page is taken too.
inline std::uintmax_t fill_file(const std::filesystem::path& file,
                                std::uintmax_t limit = ~std::uintmax_t{0}) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  static const std::string big(1 << 20, '\0');
  std::uintmax_t written = 0;
  for (std::size_t chunk : {big.size(), std::size_t{4096}}) {
    while (written < limit) {
      const auto n =
          ::write(fd, big.data(), static_cast<std::size_t>(std::min<std::uintmax_t>(chunk, limit - written)));
      if (n <= 0) break;
      written += static_cast<std::uintmax_t>(n);
    }
  }
  ::fsync(fd);
  ::close(fd);
  return written;
}

}  // namespace tokend::test
