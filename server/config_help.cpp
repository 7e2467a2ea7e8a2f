// `tokend --help` and the Markdown flag table, both rendered from the flag table.
#include "server/config.hpp"
#include "server/config_flags.hpp"

#include <algorithm>

namespace tokend::server {
namespace {

constexpr std::size_t help_width = 100;
constexpr std::size_t usage_column = 34;  // where a flag's variable starts
constexpr std::string_view help_indent = "      ";

// "--listen HOST:PORT", "--sync[=BOOL]"; the negation, if any, separately.
std::string usage_of(const flag_spec& flag) {
  std::string out(flag.name);
  if (flag.is_switch()) {
    out += "[=BOOL]";
  } else {
    out += ' ';
    out += flag.value;
  }
  return out;
}

// Help text for a terminal: `code` spans lose their backquotes.
std::string plain(std::string_view text) {
  std::string out;
  std::copy_if(text.begin(), text.end(), std::back_inserter(out), [](char c) { return c != '`'; });
  return out;
}

// Wraps `text` at word boundaries into lines of at most help_width columns, each indented.
std::string wrapped(std::string_view text) {
  std::string out;
  std::string line(help_indent);
  while (!text.empty()) {
    const auto space = text.find(' ');
    const auto word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (line.size() > help_indent.size() && line.size() + 1 + word.size() > help_width) {
      out += line + "\n";
      line = help_indent;
    }
    if (line.size() > help_indent.size()) line += ' ';
    line += word;
  }
  return out + line + "\n";
}

std::string default_of(const flag_spec& flag) {
  return flag.default_value.empty() ? std::string(flag.default_text) : std::string(flag.default_value);
}

}  // namespace

std::string flags_help() {
  std::string out;
  for (const auto& flag : flag_table()) {
    std::string usage = "  " + usage_of(flag);
    if (!flag.negation.empty()) usage += ", " + std::string(flag.negation);
    usage.resize(std::max(usage.size() + 1, usage_column), ' ');
    out += usage + std::string(flag.env) + " (default: " + plain(default_of(flag)) + ")\n";
    out += wrapped(plain(flag.help));
  }
  return out;
}

std::string flags_markdown() {
  std::string out = "| flag | variable | default | meaning |\n|---|---|---|---|\n";
  for (const auto& flag : flag_table()) {
    out += "| `" + usage_of(flag) + "`";
    if (!flag.negation.empty()) out += ", `" + std::string(flag.negation) + "`";
    out += " | `" + std::string(flag.env) + "` | ";
    out += flag.default_value.empty() ? std::string(flag.default_text)
                                      : "`" + std::string(flag.default_value) + "`";
    out += " | " + std::string(flag.help) + " |\n";
  }
  return out;
}

std::string usage_text() {
  return R"(tokend - the Vida API v2 token service (POST/GET/DELETE /api/v2/tokens)

Usage:
  tokend [serve] [flags]    run the service (the default command)
  tokend keygen             print a new well-formed key
  tokend token create|list|delete|roll [flags]
                            manage the keys of a running tokend as an operator
                            (see tokend token --help)
  tokend --help             show this help
  tokend --help-markdown    print the flags below as a Markdown table (README.md's configuration table)

Flags of serve (each also read from the environment variable shown; a flag wins):
)" + flags_help() +
         R"(Durations: 500ms, 10s, 5m, 2h, 30d, or a number of seconds. BOOL: true, false, 1, 0, on, off, yes or no.

Bootstrap (environment only):
  TOKEND_BOOTSTRAP_TOKEN    a key to store at start if absent (description "bootstrap")
  TOKEND_BOOTSTRAP_USER_ID  its owner (default 1)
  TOKEND_BOOTSTRAP_TYPE     its type: admin (the default) or operator (acts for any user)
  With neither and an empty store, tokend creates a key for user 1 and writes it to
  <data-dir>/admin-token (mode 0600; a symbolic link there is replaced, never followed).
  The data directory is created 0700 (an existing one open to others is tightened, with a
  warning) and every file tokend or RocksDB writes is 0600 (umask 077).

Logs: JSON lines on stdout. Each API response carries X-Request-Id: the request's own header when
it is 1-128 characters of [A-Za-z0-9._-] holding no run of 32 or more hex digits (separators
allowed between them: it may be a key), a new id otherwise; the log lines of a
request name it. An access line has method, path (never the query string), status,
duration_seconds, request_id and bytes; no key is ever logged.

Signals: SIGTERM/SIGINT drain: readiness fails and the API listener closes at once; in-flight
requests finish, and each kept-alive connection's next request (within the idle grace) is answered
with Connection: close; then exit 0.
)";
}

}  // namespace tokend::server
