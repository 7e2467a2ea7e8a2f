// The one table of `tokend serve`'s flags: each flag's name, environment variable, default and
// help. Parsing (config.cpp), the defaults of a `config`, `tokend --help` and README.md's
// configuration table (`tokend --help-markdown`) are all derived from it.
#pragma once

#include "server/config.hpp"

#include <span>
#include <string>
#include <string_view>

namespace tokend::server {

struct flag_spec {
  std::string_view name;  // "--listen"
  std::string_view env;   // "TOKEND_LISTEN"
  // What follows the name in help ("HOST:PORT"); empty for a switch, which takes [=BOOL] or nothing.
  std::string_view value;
  // Applied to every config before the environment and the flags; empty when the flag has none.
  std::string_view default_value;
  // Shown as the default when there is no default_value (it may hold `code` spans).
  std::string_view default_text;
  std::string_view negation;  // a switch's flag for false ("--no-sync"), or empty
  // Sets the flag's value in the config; throws config_error naming `flag` (the flag or variable).
  void (*apply)(config& c, const std::string& flag, const std::string& value);
  std::string_view help;  // one sentence or a few; may hold `code` spans

  [[nodiscard]] bool is_switch() const noexcept { return value.empty(); }
};

[[nodiscard]] std::span<const flag_spec> flag_table();

// The flags' part of `tokend --help`: per flag, its usage, variable and default, then its help.
[[nodiscard]] std::string flags_help();

// The table as Markdown, as README.md's configuration table has it.
[[nodiscard]] std::string flags_markdown();

}  // namespace tokend::server
