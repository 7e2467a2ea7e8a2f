// JSON-lines logging on stdout. Callers pass structured fields; a key must never be one of them.
#pragma once

#include <boost/json/object.hpp>

#include <string_view>

namespace tokend::server::log {

enum class level { debug, info, warn, error };

void write(level lvl, std::string_view message, boost::json::object fields = {});

inline void info(std::string_view message, boost::json::object fields = {}) {
  write(level::info, message, std::move(fields));
}
inline void warn(std::string_view message, boost::json::object fields = {}) {
  write(level::warn, message, std::move(fields));
}
inline void error(std::string_view message, boost::json::object fields = {}) {
  write(level::error, message, std::move(fields));
}

}  // namespace tokend::server::log
