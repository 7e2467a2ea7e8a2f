// The help texts of `tokend token`; see token_cli.hpp.
#include "server/token_cli.hpp"

namespace tokend::server::cli {
namespace {

constexpr std::string_view common = R"(
Flags of every command (each also read from the environment variable shown; a flag wins):
  --url URL          TOKEND_URL       the server: http://HOST[:PORT][/PREFIX]
                                      (default http://127.0.0.1:8080; http only)
  --key-file PATH    TOKEND_KEY_FILE  a file whose first line is the key to act with
  --output FORMAT    TOKEND_OUTPUT    table (the default) or json (the server's JSON)
  --help, -h                          this help
Environment only:
  TOKEND_KEY                          the key itself, when there is no key file

The key is never taken on the command line: there is no --key flag, since arguments show in ps
and in shell history. It travels in an Authorization: Bearer header, never in the URL, and is
never printed. Without --user-id (or --user) a command acts for the key's own user; only an
operator key may name another user.

Durations: 90, 90s, 1500ms, 15m, 12h or 30d, sent as whole seconds. Times are shown in UTC.
Rate limits: N/DURATION[:BURST], e.g. 100/1s (100 a second, a burst of 100), 6000/1m:200 (6000 a
minute, at most 200 at once) or 100/s; the window is 1s to 1d. 0: the key is not limited, whatever
the server's default (--rate-limit of tokend serve).
Exit status: 0 success; 1 the server refused (its message and the HTTP status on stderr) or could
not be reached within 30 s; 2 a usage error.
)";

constexpr std::string_view overview =
    R"(tokend token - manage the keys of a running tokend (an operator's client)

Usage:
  tokend token create [--user-id N] --description TEXT [--type admin|operator]
                      [--expires-in DURATION | --expires-at UNIX] [--rate-limit LIMIT]
  tokend token list [--user-id N] [--page N]
  tokend token delete [--user-id N] --id ID
  tokend token roll [--user-id N] --id ID [--overlap DURATION]
                    [--expires-in DURATION | --expires-at UNIX] [--rate-limit LIMIT | --default]
  tokend token limit [--user-id N] (ID | --token-file FILE) (--rate-limit LIMIT | --default)
  tokend token limited [-n N]
  tokend token quota [--user N]
  tokend token quota --user N (--max-tokens M | --default)
  tokend token COMMAND --help

  create   a new key, printed once
  list     every key of the user (all pages), masked: ID, USER, TYPE, PREFIX, CREATED, EXPIRES,
           LAST USED, RATE LIMIT, DESCRIPTION
  delete   delete a key by its ID
  roll     replace a key by a new one (same user, type and description); the old one keeps
           working for the overlap, then expires
  limit    change a key's rate limit (operator keys only)
  limited  the keys refused most by this server instance (operator keys only)
  quota    how many keys a user holds and its bound; an operator key may change the bound
)";

constexpr std::string_view create_help = R"(tokend token create - create a key, printed once

Usage:
  tokend token create [--user-id N] --description TEXT [--type admin|operator]
                      [--expires-in DURATION | --expires-at UNIX] [--rate-limit LIMIT]

  --user-id N             the owner (default: the key's own user; another user needs an operator key)
  --description TEXT      1-256 characters, required
  --type TYPE             admin (default) or operator (an operator key can create one)
  --expires-in DURATION   the key's lifetime (default: the server's --token-ttl)
  --expires-at UNIX       or its expiry, in Unix seconds
  --rate-limit LIMIT      the key's own rate limit, N/DURATION[:BURST] or 0 for none
                          (default: the server's --rate-limit)
)";

constexpr std::string_view list_help = R"(tokend token list - list a user's keys, masked

Usage:
  tokend token list [--user-id N] [--page N]

  --user-id N   whose keys (default: the key's own user; another user needs an operator key)
  --page N      that page alone (0-10; the server refuses pages past 10000 keys)

Walks every page (1000 keys a page), following the server's nextCursor, so every page costs the
server the same however deep it is. With --output json, prints one object
{"success":true,"message":"Success","tokens":[...]} holding every page's tokens.
)";

constexpr std::string_view delete_help = R"(tokend token delete - delete a key

Usage:
  tokend token delete [--user-id N] --id ID

  --user-id N   the key's owner (default: the key's own user; another user needs an operator key)
  --id ID       the key's ID (the ID column of tokend token list), required
)";

constexpr std::string_view roll_help = R"(tokend token roll - replace a key by a new one, printed once

Usage:
  tokend token roll [--user-id N] --id ID [--overlap DURATION]
                    [--expires-in DURATION | --expires-at UNIX] [--rate-limit LIMIT | --default]

  --user-id N             the key's owner (default: the key's own user; another user needs an
                          operator key)
  --id ID                 the key to replace (the ID column of tokend token list), required
  --overlap DURATION      how long the old key keeps working (default 0: refused at once)
  --expires-in DURATION   the new key's lifetime (default: the server's --token-ttl)
  --expires-at UNIX       or its expiry, in Unix seconds
  --rate-limit LIMIT      the new key's own rate limit, N/DURATION[:BURST] or 0 for none
  --default               the new key follows the server's default limit
                          (without either, the new key keeps the old key's limit)
)";

constexpr std::string_view limit_help = R"(tokend token limit - change a key's rate limit (operator keys only)

Usage:
  tokend token limit [--user-id N] (ID | --id ID | --token-file FILE) (--rate-limit LIMIT | --default)

  ID, --id ID             the key (the ID column of tokend token list)
  --token-file FILE       or a file whose first line is the key itself
  --user-id N             the key's owner (default: the operator key's own user)
  --rate-limit LIMIT      the key's own limit, N/DURATION[:BURST] (e.g. 100/1s:200), or 0: not limited
  --default               drop the key's own limit: it follows the server's --rate-limit

Every instance applies the new limit from the key's next request on. Prints the key's limit now.
)";

constexpr std::string_view limited_help = R"(tokend token limited - the most refused keys (operator keys only)

Usage:
  tokend token limited [-n N]

  -n N   how many keys, 1-100 (default 20)

The keys this server instance holds a rate-limit bucket for, most refusals first: USER, ID,
PREFIX (masked as lists show it), RATE LIMIT, REFUSED, ADMITTED. The counts are this instance's
alone: behind a load balancer, ask each instance (--url of each pod).
)";

constexpr std::string_view quota_help = R"(tokend token quota - a user's keys and their bound

Usage:
  tokend token quota [--user N]
  tokend token quota --user N (--max-tokens M | --default)

  --user N, --user-id N   whose (default: the key's own user; another user needs an operator key)
  --max-tokens M          give the user a bound of its own: 0 (none) to 1000000000 (operator keys only)
  --default               take it back: the server's --max-tokens-per-user applies again

Prints the keys the user holds and the bound that applies. A bound below the keys held deletes
nothing: creates are refused until deletes bring the count under it.
)";

}  // namespace

std::string help_text(command cmd) {
  std::string_view head = overview;
  switch (cmd) {
    case command::create:
      head = create_help;
      break;
    case command::list:
      head = list_help;
      break;
    case command::remove:
      head = delete_help;
      break;
    case command::roll:
      head = roll_help;
      break;
    case command::limit:
      head = limit_help;
      break;
    case command::limited:
      head = limited_help;
      break;
    case command::quota:
      head = quota_help;
      break;
    case command::none:
      break;
  }
  return std::string(head) + std::string(common);
}

}  // namespace tokend::server::cli
