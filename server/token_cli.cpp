// The operator CLI: its arguments, variables and key files, and run(); see token_cli.hpp.
#include "server/token_cli.hpp"

#include "core/duration.hpp"
#include "core/key.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>

namespace tokend::server::cli {
namespace {

// Which subcommands take a flag, as bits of 1 << command.
constexpr unsigned bit(command c) { return 1U << static_cast<unsigned>(c); }
constexpr unsigned all = bit(command::create) | bit(command::list) | bit(command::remove) |
                         bit(command::roll) | bit(command::limit) | bit(command::limited) |
                         bit(command::quota);

struct flag_def {
  std::string_view name;
  unsigned commands;
  bool takes_value = true;
};

constexpr std::array<flag_def, 16> flags = {{
    {"--url", all},
    {"--output", all},
    {"--key-file", all},
    // The view of limited keys spans every user.
    {"--user-id", all & ~bit(command::limited)},
    {"--description", bit(command::create)},
    {"--type", bit(command::create)},
    {"--expires-in", bit(command::create) | bit(command::roll)},
    {"--expires-at", bit(command::create) | bit(command::roll)},
    {"--id", bit(command::remove) | bit(command::roll) | bit(command::limit)},
    {"--overlap", bit(command::roll)},
    {"--rate-limit", bit(command::create) | bit(command::roll) | bit(command::limit)},
    {"--default", bit(command::roll) | bit(command::limit) | bit(command::quota), false},
    {"--token-file", bit(command::limit)},
    {"-n", bit(command::limited)},
    {"--page", bit(command::list)},
    {"--max-tokens", bit(command::quota)},
}};

constexpr std::array<std::pair<std::string_view, command>, 7> commands = {{{"create", command::create},
                                                                           {"list", command::list},
                                                                           {"delete", command::remove},
                                                                           {"roll", command::roll},
                                                                           {"limit", command::limit},
                                                                           {"limited", command::limited},
                                                                           {"quota", command::quota}}};

// Keys are 64 characters: an argument that long is not repeated in a message, in case it is one.
std::string quoted(std::string_view arg) {
  if (arg.size() >= 32) return "(an argument of " + std::to_string(arg.size()) + " characters)";
  return "'" + std::string(arg) + "'";
}

std::optional<command> command_named(std::string_view name) {
  for (const auto& [n, c] : commands) {
    if (n == name) return c;
  }
  return std::nullopt;
}

std::string_view command_name(command c) {
  for (const auto& [n, cmd] : commands) {
    if (cmd == c) return n;
  }
  return "";
}

// A set variable with a non-empty value; an empty one counts as unset.
std::optional<std::string> variable(const env_lookup& env, const std::string& name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

std::uint64_t parse_integer(std::string_view flag, std::string_view text, std::uint64_t min,
                            std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    throw usage_error("invalid value for " + std::string(flag) + ": " + quoted(text) +
                      " (expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                      ")");
  }
  return value;
}

// userId and id: positive integers a JSON number holds exactly.
constexpr std::uint64_t max_json_integer = std::uint64_t{1} << 53;

std::string trimmed(std::string_view s) {
  constexpr std::string_view space = " \t\r\n\v\f";
  const auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(space);
  return std::string(s.substr(first, last - first + 1));
}

// The first line of `path`, trimmed; `what` names the file in a message.
std::string first_line_of(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) throw usage_error("cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno));
  std::string line;
  std::getline(in, line);
  return trimmed(line);
}

}  // namespace

std::int64_t parse_duration_seconds(std::string_view flag, std::string_view text, std::int64_t min) {
  const auto d = core::parse_duration(text);
  const std::string invalid = "invalid value for " + std::string(flag) + ": " + quoted(text);
  if (!d) throw usage_error(invalid + " (expected a duration such as 30d, 12h, 15m, 90s or 90)");
  if (d->count() % 1000 != 0) throw usage_error(invalid + " (the server takes whole seconds)");
  const std::int64_t seconds = d->count() / 1000;
  if (seconds < min) throw usage_error(invalid + " (at least " + std::to_string(min) + " s)");
  return seconds;
}

options parse_args(const std::vector<std::string>& args, const env_lookup& env) {
  options o;
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") o.help = true;
  }
  std::map<std::string, std::string, std::less<>> given;
  std::optional<std::string> positional_id;  // `limit ID`
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") continue;
    if (!a.starts_with("-")) {
      if (o.cmd == command::limit && !positional_id) {
        positional_id = a;
        continue;
      }
      if (o.cmd != command::none) throw usage_error("unexpected argument " + quoted(a));
      const auto c = command_named(a);
      if (!c) throw usage_error("unknown command " + quoted(a) + " (" + std::string(command_names) + ")");
      o.cmd = *c;
      continue;
    }
    const auto eq = a.find('=');
    std::string name = a.substr(0, eq);
    if (name == "--user") name = "--user-id";  // the shorter spelling, one flag all the same
    if (name == "--key") {
      throw usage_error(
          "there is no --key flag: a key on the command line shows in ps and in shell history; "
          "give --key-file PATH (or TOKEND_KEY_FILE), or set TOKEND_KEY");
    }
    const auto* def =
        std::find_if(flags.begin(), flags.end(), [&](const flag_def& f) { return f.name == name; });
    if (def == flags.end() || name == "--help") throw usage_error("unknown flag " + quoted(name));
    std::string value;
    if (!def->takes_value) {
      if (eq != std::string::npos) throw usage_error(name + " takes no value");
    } else if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else {
      if (i + 1 == args.size()) throw usage_error(name + " needs a value");
      value = args[++i];
    }
    if (!given.emplace(name, std::move(value)).second) throw usage_error(name + " is given more than once");
  }
  if (o.help) return o;
  if (o.cmd == command::none) throw usage_error("missing command: " + std::string(command_names));
  for (const auto& entry : given) {
    const std::string& name = entry.first;
    const auto* def =
        std::find_if(flags.begin(), flags.end(), [&](const flag_def& f) { return f.name == name; });
    if ((def->commands & bit(o.cmd)) == 0) {
      throw usage_error(name + " is not a flag of " + std::string(command_name(o.cmd)));
    }
  }
  // Each setting from its flag, else its variable; `source` names which one in a message.
  const auto setting = [&](const std::string& flag,
                           const std::string& var) -> std::optional<std::pair<std::string, std::string>> {
    if (const auto it = given.find(flag); it != given.end()) return std::pair{it->second, flag};
    if (auto v = variable(env, var)) return std::pair{*v, var};
    return std::nullopt;
  };
  if (const auto url = setting("--url", "TOKEND_URL")) o.url_text = url->first;
  const auto parsed = parse_server_url(o.url_text);
  if (!parsed.url) throw usage_error("invalid URL " + quoted(o.url_text) + ": " + parsed.error);
  o.url = *parsed.url;
  if (const auto output = setting("--output", "TOKEND_OUTPUT")) {
    if (output->first == "table")
      o.output = output_format::table;
    else if (output->first == "json")
      o.output = output_format::json;
    else
      throw usage_error("invalid value for " + output->second + ": " + quoted(output->first) +
                        " (expected table or json)");
  }
  if (const auto file = setting("--key-file", "TOKEND_KEY_FILE")) o.key_file = file->first;
  const auto flag = [&](const std::string& name) -> const std::string* {
    const auto it = given.find(name);
    return it == given.end() ? nullptr : &it->second;
  };
  if (const auto* v = flag("--user-id")) o.user_id = parse_integer("--user-id", *v, 1, max_json_integer);
  if (const auto* v = flag("--id")) o.id = parse_integer("--id", *v, 1, max_json_integer);
  if (const auto* v = flag("--description")) o.description = *v;
  if (const auto* v = flag("--type")) {
    if (*v != "admin" && *v != "operator")
      throw usage_error("invalid value for --type: " + quoted(*v) + " (expected admin or operator)");
    o.type = *v;
  }
  if (const auto* v = flag("--expires-in")) o.expires_in = parse_duration_seconds("--expires-in", *v, 1);
  if (const auto* v = flag("--expires-at")) {
    o.expires_at = static_cast<std::int64_t>(parse_integer("--expires-at", *v, 1, max_json_integer));
  }
  if (const auto* v = flag("--overlap")) o.overlap = parse_duration_seconds("--overlap", *v, 0);
  if (o.expires_in && o.expires_at) throw usage_error("give --expires-in or --expires-at, not both");
  if (const auto* v = flag("--rate-limit")) o.rate_limit = parse_rate_limit("--rate-limit", *v);
  o.default_limit = flag("--default") != nullptr;
  if (const auto* v = flag("--token-file")) o.token_file = *v;
  if (const auto* v = flag("-n")) o.count = parse_integer("-n", *v, 1, 100);
  // The server refuses pages past 10000 keys: the walk without --page goes on by cursor.
  if (const auto* v = flag("--page")) o.page = parse_integer("--page", *v, 0, 10);
  if (const auto* v = flag("--max-tokens"))
    o.max_tokens = parse_integer("--max-tokens", *v, 0, 1'000'000'000);
  if (o.max_tokens && o.default_limit) throw usage_error("give --max-tokens or --default, not both");
  if (o.cmd == command::quota && (o.max_tokens || o.default_limit) && !o.user_id)
    throw usage_error("quota --max-tokens or --default needs --user N (the user whose bound changes)");
  if (o.rate_limit && o.default_limit) throw usage_error("give --rate-limit or --default, not both");
  if (o.cmd == command::limit) {
    if (positional_id && o.id) throw usage_error("give the key's ID once (ID or --id ID)");
    if (positional_id) o.id = parse_integer("ID", *positional_id, 1, max_json_integer);
    if (static_cast<int>(o.id.has_value()) + static_cast<int>(!o.token_file.empty()) != 1) {
      throw usage_error(
          "limit needs the key to change: its ID (the ID column of tokend token list) or "
          "--token-file FILE holding the key");
    }
    if (!o.rate_limit && !o.default_limit) {
      throw usage_error("limit needs --rate-limit N/DURATION[:BURST] (or 0: not limited) or --default");
    }
  }
  if (o.cmd == command::create && !o.description) throw usage_error("create needs --description TEXT");
  if ((o.cmd == command::remove || o.cmd == command::roll) && !o.id) {
    throw usage_error(std::string(command_name(o.cmd)) +
                      " needs --id ID (the ID column of tokend token list)");
  }
  return o;
}

void read_target_key(options& o) {
  if (o.token_file.empty()) return;
  o.target_key = first_line_of(o.token_file, "the token file");
  if (!core::is_well_formed_key(o.target_key)) {
    throw usage_error("the first line of " + o.token_file +
                      " is not a well-formed key (64 hex characters with a valid checksum)");
  }
}

std::string read_key(const options& o, const env_lookup& env) {
  std::string key;
  std::string source;
  if (!o.key_file.empty()) {
    key = first_line_of(o.key_file, "the key file");
    source = "the first line of " + o.key_file;
  } else if (auto v = variable(env, "TOKEND_KEY")) {
    key = trimmed(*v);
    source = "TOKEND_KEY";
  } else {
    throw usage_error(
        "no key: give --key-file PATH (or TOKEND_KEY_FILE) naming a file that holds it, "
        "or set TOKEND_KEY");
  }
  if (!core::is_well_formed_key(key)) {
    throw usage_error(source + " is not a well-formed key (64 hex characters with a valid checksum)");
  }
  return key;
}

int run(const std::vector<std::string>& args, const env_lookup& env, std::ostream& out, std::ostream& err) {
  try {
    options o = parse_args(args, env);
    if (o.help) {
      out << help_text(o.cmd);
      return 0;
    }
    const std::string key = read_key(o, env);
    read_target_key(o);
    return execute(o, key, send_request, out, err);
  } catch (const usage_error& e) {
    err << "tokend token: " << e.what() << "\n(see tokend token --help)\n";
    return 2;
  }
}

}  // namespace tokend::server::cli
