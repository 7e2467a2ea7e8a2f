// `tokend token create|list|delete|roll|limit|limited|quota`: the operator's client of a running
// tokend. Argument parsing and the requests' shapes are pure functions (unit-tested); run() reads
// the key, talks to the server (cli_http.hpp) and prints JSON or a table (cli_table.hpp).
#pragma once

#include "core/rate_limit.hpp"
#include "server/cli_http.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tokend::server::cli {

// Looks an environment variable up; injectable so tests need not touch the real environment.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

// A mistake on the command line or in the CLI's variables: exit status 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class command { none, create, list, remove, roll, limit, limited, quota };
// The subcommands as messages name them.
inline constexpr std::string_view command_names = "create, list, delete, roll, limit, limited or quota";
enum class output_format { table, json };

inline constexpr std::string_view default_url = "http://127.0.0.1:8080";

struct options {
  command cmd = command::none;
  bool help = false;  // --help: print help_text(cmd) and do nothing else
  server_url url;     // --url / TOKEND_URL
  std::string url_text{default_url};
  output_format output = output_format::table;  // --output / TOKEND_OUTPUT
  std::string key_file;                         // --key-file / TOKEND_KEY_FILE; empty: TOKEND_KEY
  std::optional<std::uint64_t> user_id;         // --user-id (or --user)
  std::optional<std::uint64_t> id;              // --id
  std::optional<std::string> description;       // --description
  std::string type = "admin";                   // --type
  std::optional<std::int64_t> expires_in;       // --expires-in, seconds
  std::optional<std::int64_t> expires_at;       // --expires-at, Unix seconds
  std::optional<std::int64_t> overlap;          // --overlap, seconds
  std::optional<core::rate_limit> rate_limit;   // --rate-limit
  bool default_limit = false;                   // --default: back to the server's default limit (or bound)
  std::string token_file;                       // limit --token-file: names the key to change
  std::string target_key;                       // the key read from token_file (read_target_key)
  std::optional<std::uint64_t> count;           // limited -n
  std::optional<std::uint64_t> page;            // list --page: that page alone
  std::optional<std::uint64_t> max_tokens;      // quota --max-tokens
};

// The arguments after `token`; flags win over the environment. Throws usage_error, whose message
// never repeats an argument that could be a key.
[[nodiscard]] options parse_args(const std::vector<std::string>& args, const env_lookup& env);

// A duration as the server's flags take it ("90", "90s", "1500ms", "15m", "12h", "30d") in whole
// seconds; `min` is 0 or 1. Throws usage_error naming `flag`.
[[nodiscard]] std::int64_t parse_duration_seconds(std::string_view flag, std::string_view text,
                                                  std::int64_t min);

// "N/DURATION[:BURST]" (a window of whole seconds, 1s to 1d; "100/s" is "100/1s") or "0" (not
// limited). Throws usage_error naming `flag`.
[[nodiscard]] core::rate_limit parse_rate_limit(std::string_view flag, std::string_view text);

// `limit --token-file F`: the key in F's first line (trimmed), into o.target_key. Throws usage_error.
void read_target_key(options& o);

// The operator's key: the first line of the key file (trimmed), else TOKEND_KEY. Throws
// usage_error, naming both ways, when there is none or it is not a well-formed key.
[[nodiscard]] std::string read_key(const options& o, const env_lookup& env);

// `tokend token --help` (cmd none) or one subcommand's help.
[[nodiscard]] std::string help_text(command cmd);

// One request of a subcommand: method, target under the URL's prefix, JSON body.
struct request_plan {
  std::string method;
  std::string target;
  std::string body;
};

// The request of create, delete, roll, limit, limited or quota; list's is list_request().
[[nodiscard]] request_plan plan_request(const options& o);
// The list's page after `cursor` (empty: the first), 1000 keys a page.
[[nodiscard]] request_plan list_request(const options& o, std::string_view cursor);
// Page `page` of the list (pageSize 1000): --page, and the walk of a server without cursors.
[[nodiscard]] request_plan list_page_request(const options& o, std::uint64_t page);

// The server's error body's message for stderr, or a short description of a body that has none.
[[nodiscard]] std::string error_message(unsigned status, std::string_view body);

// Sends requests for `o` and prints the outcome; the exit status (0 ok, 1 server or transport
// error). Exposed apart from run() so tests can substitute the transport.
using transport = std::function<http_reply(const server_url&, const http_call&)>;
[[nodiscard]] int execute(const options& o, const std::string& key, const transport& send, std::ostream& out,
                          std::ostream& err);

// Everything: parse, read the key, execute. Usage errors print the message and a hint on `err`
// and give 2.
[[nodiscard]] int run(const std::vector<std::string>& args, const env_lookup& env, std::ostream& out,
                      std::ostream& err);

}  // namespace tokend::server::cli
