// A fresh, empty temporary directory for one test, removed with everything in it at the end.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tokend::test {

class temp_dir {
 public:
  // Under `parent`, or the system's temporary directory ($TMPDIR, else /tmp) when empty.
  explicit temp_dir(const std::string& prefix = "tokend-test", const std::filesystem::path& parent = {}) {
    const auto under = parent.empty() ? std::filesystem::temp_directory_path() : parent;
    std::string pattern = (under / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tokend::test
