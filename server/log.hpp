// JSON-lines logging on stdout. Callers pass structured fields; a key must never be one of them.
// Lines below the configured level (--log-level, default info) are dropped before any formatting.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::server::log {

enum class level { debug, info, warn, error };

// The least severe level written; thread-safe, may change at any time (start-up sets it once).
void set_level(level lvl) noexcept;
[[nodiscard]] level current_level() noexcept;
[[nodiscard]] bool enabled(level lvl) noexcept;

// "debug", "info", "warn" (or "warning"), "error"; nullopt for anything else.
[[nodiscard]] std::optional<level> parse_level(std::string_view text) noexcept;
[[nodiscard]] const char* level_name(level lvl) noexcept;

// The "time" of a line: RFC 3339 in UTC with milliseconds, e.g. 2026-12-01T12:10:31.123Z.
[[nodiscard]] std::string rfc3339_utc(std::chrono::system_clock::time_point t);

// Writes one line when `lvl` is enabled.
void write(level lvl, std::string_view message, boost::json::object fields = {});

// The access log: written whenever the caller decided to (--access-log), whatever the level, as
// an info line with message "access".
void access(boost::json::object fields);

inline void debug(std::string_view message, boost::json::object fields = {}) {
  if (enabled(level::debug)) write(level::debug, message, std::move(fields));
}
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
