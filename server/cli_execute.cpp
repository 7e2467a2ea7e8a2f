// Sends a `tokend token` subcommand's requests and prints the answers, as JSON or a table; see
// token_cli.hpp.
#include "server/cli_table.hpp"
#include "server/token_cli.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>

namespace tokend::server::cli {
namespace {

namespace json = boost::json;

json::object parse_object(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) throw reply_error("the server's answer is not a JSON object");
  return std::move(v.get_object());
}

const json::object& object_member(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_object()) {
    throw reply_error("the server's answer has no \"" + std::string(name) + "\" object");
  }
  return v->get_object();
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c;
  return out;
}

// The new key of a create or roll, shown once, and its row.
void print_new_key(const json::object& token, std::ostream& out) {
  out << format_table({row_of(token)});
  const auto* key = token.if_contains("token");
  if (key == nullptr || !key->is_string()) throw reply_error("the server's answer has no new key");
  out << "Key (shown once, keep it now): " << printable(key->get_string()) << "\n";
}

void print_json(std::string_view body, std::ostream& out) {
  out << body;
  if (!body.ends_with('\n')) out << '\n';
}

// Every page by cursor (each costs the server the same at any depth), or the one --page names. A
// server without cursors answers hasMore and no nextCursor: the walk then goes on by page.
int list_all(const options& o, const std::string& key, const transport& send, std::ostream& out,
             std::ostream& err) {
  json::array tokens;
  std::string cursor;
  bool by_page = o.page.has_value();
  std::uint64_t page = o.page.value_or(0);
  for (;;) {
    const auto plan = by_page ? list_page_request(o, page) : list_request(o, cursor);
    const auto reply = send(o.url, {plan.method, plan.target, key, plan.body});
    if (reply.status != 200) {
      err << "tokend token: " << error_message(reply.status, reply.body) << "\n";
      return 1;
    }
    json::object answer = parse_object(reply.body);
    auto* page_tokens = answer.if_contains("tokens");
    if (page_tokens == nullptr || !page_tokens->is_array()) {
      throw reply_error("the server's answer has no \"tokens\" array");
    }
    const auto* more = answer.if_contains("hasMore");
    const bool has_more = more != nullptr && more->is_bool() && more->get_bool();
    // A server that promises more but sends none would keep this loop going forever.
    if (has_more && page_tokens->get_array().empty())
      throw reply_error("the server sent an empty page with more to come");
    for (auto& t : page_tokens->get_array()) tokens.push_back(std::move(t));
    if (!has_more || o.page) break;
    const auto* next = answer.if_contains("nextCursor");
    if (next != nullptr && next->is_string() && !next->get_string().empty()) {
      cursor = std::string(next->get_string());
      by_page = false;
    } else {
      // Cursors never come back to pages: a server answering both ways is not one to mix.
      by_page = true;
      ++page;
    }
  }
  if (o.output == output_format::json) {
    json::object all_tokens;
    all_tokens["success"] = true;
    all_tokens["message"] = "Success";
    all_tokens["tokens"] = std::move(tokens);
    out << json::serialize(all_tokens) << "\n";
  } else {
    out << format_table(rows_of(tokens));
  }
  return 0;
}

// The answer of limit (the key's id and its limit now) or limited (a table of keys).
void print_limits(const options& o, const json::object& answer, std::ostream& out) {
  if (o.cmd == command::limited) {
    const auto* keys = answer.if_contains("keys");
    if (keys == nullptr || !keys->is_array()) throw reply_error("the server's answer has no \"keys\" array");
    out << format_limited_table(keys->get_array());
    return;
  }
  const auto* id = answer.if_contains("id");
  out << "Rate limit of key"
      << (id != nullptr && id->is_number() ? " " + json::serialize(*id) : std::string()) << ": "
      << rate_limit_cell(answer) << "\n";
}

// The answer of quota: the user's count and the bound that applies.
void print_quota(const json::object& answer, std::ostream& out) {
  const auto number = [&](std::string_view name) {
    const auto* v = answer.if_contains(name);
    if (v == nullptr || !v->is_number())
      throw reply_error("the server's answer has no \"" + std::string(name) + "\"");
    return json::serialize(*v);
  };
  const auto* own = answer.if_contains("ownBound");
  const bool own_bound = own != nullptr && own->is_bool() && own->get_bool();
  const std::string bound = number("maxTokens");
  out << "User " << number("userId") << ": " << number("tokens") << " tokens, bound "
      << (bound == "0" ? "none" : bound) << (own_bound ? " (its own)" : " (the server's default)") << "\n";
}

// Create, delete, roll, limit, limited and quota: one request, one answer.
int single(const options& o, const std::string& key, const transport& send, std::ostream& out,
           std::ostream& err) {
  const auto plan = plan_request(o);
  const auto reply = send(o.url, {plan.method, plan.target, key, plan.body});
  if (reply.status != 200) {
    err << "tokend token: " << error_message(reply.status, reply.body) << "\n";
    return 1;
  }
  const json::object answer = parse_object(reply.body);
  if (o.output == output_format::json) {
    print_json(reply.body, out);
    return 0;
  }
  if (o.cmd == command::limit || o.cmd == command::limited) {
    print_limits(o, answer, out);
    return 0;
  }
  if (o.cmd == command::quota) {
    print_quota(answer, out);
    return 0;
  }
  if (o.cmd == command::remove) {
    const auto* message = answer.if_contains("message");
    out << (message != nullptr && message->is_string() ? printable(message->get_string()) : "Token deleted")
        << "\n";
    return 0;
  }
  print_new_key(object_member(answer, "token"), out);
  if (o.cmd == command::roll) {
    if (const auto* previous = answer.if_contains("previous"); previous != nullptr && previous->is_object()) {
      const auto& p = previous->get_object();
      const auto* id = p.if_contains("id");
      out << "Previous key" << (id != nullptr && id->is_number() ? " " + json::serialize(*id) : std::string())
          << " expires " << time_cell(p, "expiresAt") << "\n";
    }
  }
  return 0;
}

}  // namespace

std::string error_message(unsigned status, std::string_view body) {
  std::string out = "HTTP " + std::to_string(status);
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.get_object().if_contains("message"); m != nullptr && m->is_string()) {
      return out + ": " + printable(m->get_string());
    }
  }
  return out + " (the answer holds no JSON message)";
}

int execute(const options& o, const std::string& key, const transport& send, std::ostream& out,
            std::ostream& err) {
  try {
    return o.cmd == command::list ? list_all(o, key, send, out, err) : single(o, key, send, out, err);
  } catch (const transport_error& e) {
    err << "tokend token: " << e.what() << "\n";
  } catch (const reply_error& e) {
    err << "tokend token: unexpected answer from " << authority(o.url) << ": " << e.what() << "\n";
  }
  return 1;
}

}  // namespace tokend::server::cli
