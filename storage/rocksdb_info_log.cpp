// The RocksDB logger adapter: formats a message and forwards it; see rocksdb_info_log.hpp.
#include "storage/rocksdb_info_log.hpp"

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <utility>

namespace tokend::storage {
namespace {

class forwarding_logger final : public rocksdb::Logger {
 public:
  explicit forwarding_logger(rocksdb_log_sink sink)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), sink_(std::move(sink)) {}

  // Header lines (options, version) are info chatter too.
  void LogHeader(const char*, va_list) override {}

  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (!sink_ || level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    std::array<char, 1024> text;  // longer messages are cut: a log line, not a dump
    va_list copy;
    va_copy(copy, ap);
    const int n = std::vsnprintf(text.data(), text.size(), format, copy);
    va_end(copy);
    if (n < 0) return;
    auto length = std::min<std::size_t>(static_cast<std::size_t>(n), text.size() - 1);
    while (length > 0 && text[length - 1] == '\n') --length;  // some messages end in a newline
    try {
      sink_(level >= rocksdb::InfoLogLevel::ERROR_LEVEL, std::string_view(text.data(), length));
      // NOLINTNEXTLINE(bugprone-empty-catch): nothing may reach RocksDB; a lost line is the lesser harm
    } catch (...) {
    }
  }

 private:
  rocksdb_log_sink sink_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> make_rocksdb_info_log(rocksdb_log_sink sink) {
  return std::make_shared<forwarding_logger>(std::move(sink));
}

}  // namespace tokend::storage
