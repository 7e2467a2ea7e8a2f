// One JSON object per line: {"ts":..., "level":..., "msg":..., ...fields}.
#include "server/log.hpp"

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>

namespace tokend::server::log {
namespace {

const char* level_name(level lvl) {
  switch (lvl) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

std::mutex output_mutex;

}  // namespace

void write(level lvl, std::string_view message, boost::json::object fields) {
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

}  // namespace tokend::server::log
