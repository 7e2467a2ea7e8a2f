// The data directory's permissions and tokend's own files in it; see data_dir.hpp.
#include "server/data_dir.hpp"

#include "server/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tokend::server {
namespace {

namespace fs = std::filesystem;

constexpr mode_t private_bits = S_IRWXG | S_IRWXO;

std::runtime_error failure(const std::string& what, const fs::path& path, int error) {
  return std::runtime_error("cannot " + what + " " + path.string() + ": " + std::strerror(error));
}

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Tightens the regular files directly in `dir` (not through symbolic links) to owner-only.
std::size_t tighten_files(const fs::path& dir) {
  std::size_t changed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    struct stat st = {};
    if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & private_bits) == 0) {
      continue;
    }
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) continue;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::fchmod(fd, st.st_mode & 0700) == 0) ++changed;
    ::close(fd);
  }
  return changed;
}

// The name of a temporary file beside `path`, unlikely to be taken (O_EXCL makes sure).
fs::path temporary_beside(const fs::path& path) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, ".%016llx.tmp", static_cast<unsigned long long>(engine()));
  return path.parent_path() / ("." + path.filename().string() + suffix);
}

}  // namespace

void prepare_data_dir(const fs::path& dir) {
  std::error_code ec;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) == 0) return;
  if (errno != EEXIST) throw failure("open the data directory", dir, errno);
  struct stat st = {};
  if (::stat(dir.c_str(), &st) != 0) throw failure("open the data directory", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw failure("open the data directory", dir, ENOTDIR);
  if ((st.st_mode & private_bits) == 0) return;
  // Group or others could read the store and the admin key: the directory is ours alone.
  if (::chmod(dir.c_str(), st.st_mode & 0700) != 0) {
    log::warn("data directory is readable by others and cannot be tightened",
              {{"path", dir.string()}, {"mode", octal(st.st_mode)}, {"error", std::strerror(errno)}});
    return;
  }
  const std::size_t files = tighten_files(dir);
  log::warn("data directory permissions tightened", {{"path", dir.string()},
                                                     {"was", octal(st.st_mode)},
                                                     {"now", octal(st.st_mode & 0700)},
                                                     {"files", files}});
}

void write_private_file(const fs::path& path, std::string_view content) {
  fs::path temporary;
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    temporary = temporary_beside(path);
    fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) throw failure("write", path, errno);
  // fchmod: the mode is exact even under a umask wider than ours.
  bool ok = ::fchmod(fd, 0600) == 0;
  for (std::size_t done = 0; ok && done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int saved = errno;
  ok = ::close(fd) == 0 && ok;
  if (ok) {
    struct stat st = {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      log::warn("replacing a symbolic link with a file (the link's target is left alone)",
                {{"path", path.string()}});
    }
    ok = ::rename(temporary.c_str(), path.c_str()) == 0;
    saved = errno;
  }
  if (!ok) {
    ::unlink(temporary.c_str());
    throw failure("write", path, saved);
  }
  // The rename is durable only once the directory is.
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) throw failure("sync the directory of", path, errno);
  const bool synced = ::fsync(dir_fd) == 0;
  saved = errno;
  ::close(dir_fd);
  if (!synced) throw failure("sync the directory of", path, saved);
}

}  // namespace tokend::server
