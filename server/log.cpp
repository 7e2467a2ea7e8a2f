// One JSON object per line: {"ts":..., "level":..., "msg":..., ...fields}.
#include "server/log.hpp"

#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace tokend::server::log {
namespace {

std::atomic<level> minimum{level::info};
std::mutex output_mutex;

void emit(level lvl, std::string_view message, boost::json::object fields) {
  using namespace std::chrono;
  boost::json::object line;
  line["ts"] = duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
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

std::optional<level> parse_level(std::string_view text) noexcept {
  if (text == "debug") return level::debug;
  if (text == "info") return level::info;
  if (text == "warn" || text == "warning") return level::warn;
  if (text == "error") return level::error;
  return std::nullopt;
}

const char* level_name(level lvl) noexcept {
  switch (lvl) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

void write(level lvl, std::string_view message, boost::json::object fields) {
  if (!enabled(lvl)) return;
  emit(lvl, message, std::move(fields));
}

void access(boost::json::object fields) { emit(level::info, "access", std::move(fields)); }

}  // namespace tokend::server::log
