// One JSON object per line: {"time":"<RFC 3339, UTC, milliseconds>", "level":..., "msg":..., ...fields}.
// "time" as RFC 3339 is the field and form that Cloud Logging, Vector, Loki and Fluent Bit's JSON
// parsers take as the event time without a rule of their own (the same as Go's log/slog).
#include "server/log.hpp"

#include "core/enum_table.hpp"

#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace tokend::server::log {
namespace {

std::atomic<level> minimum{level::info};
std::mutex output_mutex;

}  // namespace

std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  const int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  const int n = std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return std::string(text, n > 0 ? static_cast<std::size_t>(n) : 0);
}

namespace {

void emit(level lvl, std::string_view message, boost::json::object fields) {
  boost::json::object line;
  line["time"] = rfc3339_utc(std::chrono::system_clock::now());
  line["level"] = level_name(lvl);
  line["msg"] = message;
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  std::string text = boost::json::serialize(line);
  text.push_back('\n');
  std::lock_guard lock(output_mutex);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void set_level(level lvl) noexcept { minimum.store(lvl, std::memory_order_relaxed); }

level current_level() noexcept { return minimum.load(std::memory_order_relaxed); }

bool enabled(level lvl) noexcept { return lvl >= minimum.load(std::memory_order_relaxed); }

namespace {

constexpr core::enum_table<level, std::string_view, 4> level_names = {
    {{level::debug, "debug"}, {level::info, "info"}, {level::warn, "warn"}, {level::error, "error"}}};

}  // namespace

std::optional<level> parse_level(std::string_view text) noexcept {
  if (text == "warning") return level::warn;
  return core::key_of(level_names, text);
}

const char* level_name(level lvl) noexcept {
  // Every name is a literal, so its data() is NUL-terminated.
  return core::value_of(level_names, lvl, std::string_view("info")).data();
}

void write(level lvl, std::string_view message, boost::json::object fields) {
  if (!enabled(lvl)) return;
  emit(lvl, message, std::move(fields));
}

void access(boost::json::object fields) { emit(level::info, "access", std::move(fields)); }

}  // namespace tokend::server::log
