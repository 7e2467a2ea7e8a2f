// Fuzz target: whole HTTP requests. The input is the byte stream a client sends on one connection;
// it is read as the session reads it (the same request_reader, fed the same way, in reads of at
// most 8 KiB, with the same limits), and each complete request goes through the router and
// token_service over an in-memory store seeded with known keys, so authenticated paths are
// reached. Pipelined requests run in order while keep-alive holds, as on a connection; a refused
// request ends the connection. Checked for every request:
// - the bytes waiting in the session's buffer never exceed the header bound and one read;
// - a read error is answered 400, 413 or 431 (or the connection just ends on a truncated request);
// - a request that is read obeys the strict framing rules (check_framing): Transfer-Encoding only as
//   `chunked` alone in HTTP/1.1, exactly its own bytes taken, no trailer field among its fields;
// - two Authorization headers, or one that is not Bearer, are 401;
// - no 5xx and no exception: the store never fails here, so any of them is a bug;
// - the body is a JSON object with `success` true exactly on 200, and errors carry only a message;
// - no full key of the store ever appears in a response, except a new key in its create response;
// - authentication follows a model of which keys are live: live keys pass, deleted, rolled (without
//   overlap) and unknown keys get 401, including right after a delete (the cache must not remember
//   a deleted key); a key with an expiry, or an old key in its overlap, may go either way, and once
//   it passes its request is checked and modelled like any other;
// - creates and rolls number their new keys from one sequence, in the order they happen;
// - create, list, delete and roll responses have the documented shape for the caller's user, and
//   no key reaches another user (`userId` naming another user is 403: no key here is an operator).
#include "fuzz_check.hpp"

#include "core/description.hpp"
#include "core/key.hpp"
#include "server/api_parsing.hpp"
#include "server/api_router.hpp"
#include "server/http_session.hpp"
#include "server/request_reader.hpp"
#include "server/token_service.hpp"
#include "server/verify.hpp"
#include "storage/memory_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace core = tokend::core;
namespace server = tokend::server;
namespace storage = tokend::storage;
namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

// Well-formed keys (28 fixed bytes and their CRC32), also used by the seed corpus: user 1 owns
// two, user 2 one, and the last is well-formed but stored for nobody.
constexpr std::string_view user1_key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1bd708085d";
constexpr std::string_view user1_second_key =
    "6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f6df97fdc";
constexpr std::string_view user2_key = "abababababababababababababababababababababababababababab5bf30d87";
constexpr std::string_view unknown_key = "c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e39b8b40d4";

// At most this many pipelined requests per input: enough for create-then-use sequences.
constexpr int max_requests = 8;

struct key_state {
  core::user_id owner = 0;
  bool live = true;        // authenticates (unless uncertain)
  std::uint64_t id = 0;    // the store's: lists come back in its order
  bool listed = true;      // still in the store (a rolled key stays until it is swept)
  bool uncertain = false;  // has an expiry the run may reach: authentication may go either way
};

// A fresh service for every input, so that a crash reproduces from its input alone.
struct world {
  net::io_context io;  // before the store: the store's callbacks post to it until it closes
  std::unique_ptr<storage::token_store> store = storage::make_memory_store();
  server::token_service service{*store, 64, 64};       // both caches on, small: eviction paths too
  std::map<std::string, key_state, std::less<>> keys;  // what the store should hold
  std::uint64_t creations = 0;                         // the memory store numbers from 1

  // The key a delete or roll names, by key or id; nullptr when it is none of the model's.
  const std::string* named(const server::token_selector& s) const {
    for (const auto& [key, state] : keys) {
      if (s.key ? key == *s.key : state.id == s.id) return &key;
    }
    return nullptr;
  }

  world() {
    seed(user1_key, 1);
    seed(user1_second_key, 1);
    seed(user2_key, 2);
  }

  void seed(std::string_view key, core::user_id owner) {
    std::promise<bool> done;
    store->async_create(core::make_token_record(key, owner, "seed", "admin", 1678829070),
                        [&done](boost::system::result<std::uint64_t> id) { done.set_value(id.has_value()); });
    FUZZ_CHECK(done.get_future().get(), "seeding the memory store failed");
    keys[std::string(key)] = {owner, true, ++creations, true, false};
  }
};

const boost::json::object& as_object(const boost::json::value& v, const char* why) {
  FUZZ_CHECK(v.is_object(), why);
  return v.as_object();
}

const boost::json::string& string_field(const boost::json::object& o, std::string_view name,
                                        const char* why) {
  const auto* v = o.if_contains(name);
  FUZZ_CHECK(v && v->is_string(), why);
  return v->as_string();
}

// A token object of a create or list response.
void check_token_json(const boost::json::object& t, core::user_id owner, bool masked) {
  const auto& token = string_field(t, "token", "token without a token string");
  if (masked) {
    FUZZ_CHECK(token.size() == core::display_prefix_length + 4 && std::string_view(token).ends_with("...."),
               "listed token is not masked");
  } else {
    FUZZ_CHECK(core::is_well_formed_key(token), "created key is not well-formed");
  }
  FUZZ_CHECK(
      core::description_problem(string_field(t, "description", "token without description")) == nullptr,
      "token with a description the rules refuse");
  FUZZ_CHECK(string_field(t, "type", "token without type") == "admin", "token of a type other than admin");
  const auto* id = t.if_contains("id");
  FUZZ_CHECK(id && id->is_int64() && id->as_int64() >= 1, "token without a positive integer id");
  for (const char* name : {"expiresAt", "lastUsedAt"}) {
    const auto* v = t.if_contains(name);
    FUZZ_CHECK(v && (v->is_null() || (v->is_string() && !v->as_string().empty() &&
                                      std::string_view(v->as_string()).find_first_not_of("0123456789") ==
                                          std::string_view::npos)),
               "expiresAt or lastUsedAt is neither null nor a decimal string");
  }
  const auto& timestamp = string_field(t, "timestamp", "token without a timestamp string");
  FUZZ_CHECK(
      !timestamp.empty() && std::string_view(timestamp).find_first_not_of("0123456789") == std::string::npos,
      "timestamp is not a decimal string");
  const auto* user = t.if_contains("userId");
  FUZZ_CHECK(user && user->is_number() && user->to_number<core::user_id>() == owner, "token of another user");
  // Bodies that ask for a limit are parsed by the same rules, so only the shape is checked here.
  const auto* limit = t.if_contains("rateLimit");
  FUZZ_CHECK(limit && (limit->is_null() ||
                       (limit->is_object() && limit->as_object().size() == 3 &&
                        limit->as_object().contains("limit") && limit->as_object().contains("window") &&
                        limit->as_object().contains("burst"))),
             "token without a rateLimit that is null or {limit, window, burst}");
}

// The page the model expects: the caller's live keys in creation order, masked, sliced by paging.
// This is what catches a list cache that missed a create or a delete.
void check_list_contents(const world& w, core::user_id caller, const server::page_request& paging,
                         const boost::json::object& body) {
  std::map<std::uint64_t, std::string> live;  // id (creation order) -> masked key
  for (const auto& [key, state] : w.keys) {
    if (state.listed && state.owner == caller) live[state.id] = core::masked_key(key);
  }
  std::vector<std::string> expected;
  for (const auto& [order, masked] : live) expected.push_back(masked);
  const std::size_t begin = std::min(expected.size(), paging.page * paging.page_size);
  const std::size_t end = begin + std::min(paging.page_size, expected.size() - begin);
  const auto& tokens = body.at("tokens").as_array();
  FUZZ_CHECK(tokens.size() == end - begin, "list has the wrong number of tokens");
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    FUZZ_CHECK(tokens[i].as_object().at("token").as_string() == expected[begin + i],
               "list has the wrong tokens or the wrong order");
  }
  if (paging.explicit_paging) {
    const auto* more = body.if_contains("hasMore");
    FUZZ_CHECK(more && more->is_bool() && more->as_bool() == (end < expected.size()), "hasMore is wrong");
  }
}

// What one read of the session brings at most (run_session reads into 8 KiB).
constexpr std::size_t read_size = 8192;

// The most bytes that may wait in the session's buffer for a request to go on: a header (or a
// trailer section with the last chunk-size line) within its bound, and one read.
std::size_t max_waiting(const server::session_options& limits) {
  return limits.max_header_bytes + server::max_chunk_line_bytes + 4 + read_size;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Where a chunked body at the start of `s` ends by the strict rules (chunk-size lines, chunk data
// each followed by CRLF, the last chunk, then trailer lines up to an empty line); npos if it
// does not end in `s`. Written apart from the parser, so the two must agree on where a request ends.
std::size_t chunked_length(std::string_view s) {
  std::size_t at = 0;
  for (;;) {
    const auto eol = s.find("\r\n", at);
    if (eol == std::string_view::npos) return eol;
    std::uint64_t chunk = 0;
    std::size_t digits = 0;
    for (; at + digits < eol && std::isxdigit(static_cast<unsigned char>(s[at + digits])); ++digits) {
      if (chunk >> 60) return std::string_view::npos;
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[at + digits])));
      chunk = chunk * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (digits == 0) return std::string_view::npos;
    at = eol + 2;
    if (chunk == 0) {
      for (;;) {
        const auto end = s.find("\r\n", at);
        if (end == std::string_view::npos) return end;
        if (end == at) return at + 2;
        at = end + 2;
      }
    }
    if (s.size() - at < chunk + 2 || s.substr(at + chunk, 2) != "\r\n") return std::string_view::npos;
    at += chunk + 2;
  }
}

// A request the session accepted obeys the strict framing rules, whatever the parser thinks:
// - Transfer-Encoding only as one `chunked` field, in HTTP/1.1, without Content-Length;
// - the request took exactly its header and the body its framing gives, so no part of it is read
//   as another request and no part of another request as its body;
// - every field of the request was in its header block (no trailer field acts as a header field);
// - header fields and body within their bounds.
void check_framing(const server::http_request& request, std::string_view bytes, std::size_t header_bytes,
                   const server::session_options& limits) {
  FUZZ_CHECK(header_bytes <= bytes.size() && header_bytes <= limits.max_header_bytes,
             "header past its bound");
  const std::string_view header = bytes.substr(0, header_bytes);
  const std::string_view body = bytes.substr(header_bytes);
  const auto te = request.count(http::field::transfer_encoding);
  if (te > 0) {
    FUZZ_CHECK(te == 1, "a request with several Transfer-Encoding fields was read");
    FUZZ_CHECK(request.version() == 11, "an HTTP/1.0 request with Transfer-Encoding was read");
    FUZZ_CHECK(request.count(http::field::content_length) == 0,
               "Transfer-Encoding with Content-Length was read");
    std::string_view value = request[http::field::transfer_encoding];
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    FUZZ_CHECK(iequal(value, "chunked"), "a transfer coding other than chunked alone was read");
    FUZZ_CHECK(chunked_length(body) == body.size(), "a chunked request did not end where its chunks do");
  } else if (request.count(http::field::content_length) > 0) {
    FUZZ_CHECK(body.size() == request.body().size(), "a request did not end where its Content-Length says");
  } else {
    FUZZ_CHECK(body.empty(), "a request without a body framing took bytes after its header");
  }
  FUZZ_CHECK(request.body().size() <= limits.max_body_bytes, "body past its bound");
  const std::string header_lower = lower(header);
  std::size_t field_bytes = 0;
  for (const auto& field : request) {
    FUZZ_CHECK(header_lower.find("\n" + lower(field.name_string()) + ":") != std::string::npos,
               "a field that is not in the header block (a trailer field) reached the request");
    field_bytes += field.name_string().size() + field.value().size();
  }
  FUZZ_CHECK(field_bytes <= limits.max_header_bytes, "header fields past their bound");
}

// Two Authorization headers, or one that is not Bearer with a key, make a request ambiguous.
bool ambiguous_authorization(const server::http_request& request) {
  std::size_t headers = 0;
  bool foreign = false;
  for (const auto value : server::authorization_headers(request)) {
    std::string_view v = value;
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.empty()) continue;
    ++headers;
    if (v.size() <= 7 || !iequal(v.substr(0, 7), "bearer ")) foreign = true;
  }
  return headers > 1 || foreign;
}

// What the model expects of one request that reached the router.
struct expectation {
  bool routed = false;                  // the path and method are the token endpoints'
  bool verify = false;                  // a /verify request (then routed too)
  bool roll = false;                    // POST /api/v2/tokens/roll (then routed too)
  bool operator_only = false;           // PATCH /api/v2/tokens or GET /api/v2/tokens/limited
  bool uncertain = false;               // the key may or may not authenticate (see key_state)
  std::optional<core::user_id> caller;  // authenticated as this user, when routed
};

expectation expect(const server::http_request& request, const world& w) {
  expectation e;
  if (server::is_verify_target(request.target())) {
    e.routed = e.verify = true;
    const auto key = server::gateway_key_of(request);
    if (!key) return e;
    const auto it = w.keys.find(key.key());
    if (it != w.keys.end() && it->second.live) e.caller = it->second.owner;
    if (it != w.keys.end() && it->second.uncertain) e.uncertain = true;
    return e;
  }
  // The model routes by Boost.URL's parse, the server by its own: the two must agree.
  const auto target = boost::urls::parse_origin_form(request.target());
  const auto parts = server::parse_request_target(request.target());
  FUZZ_CHECK(target.has_value() == parts.has_value(),
             "parse_request_target and Boost.URL disagree on a target");
  if (!target) return e;
  FUZZ_CHECK(parts->path == std::string_view(target->encoded_path()), "the targets' paths differ");
  const auto m = request.method();
  if (target->encoded_path() == server::roll_path) {
    if (m != http::verb::post) return e;
    e.roll = true;
  } else if (target->encoded_path() == server::limited_path) {
    if (m != http::verb::get) return e;
    e.operator_only = true;
  } else if (target->encoded_path() != server::tokens_path ||
             (m != http::verb::get && m != http::verb::post && m != http::verb::delete_ &&
              m != http::verb::patch)) {
    return e;
  } else if (m == http::verb::patch) {
    e.operator_only = true;
  }
  e.routed = true;
  const auto authorization = server::authorization_headers(request);
  const auto key = server::caller_key(*parts, {authorization.data(), authorization.size()});
  if (!key) return e;
  const auto it = w.keys.find(*key);
  if (it != w.keys.end() && it->second.live) e.caller = it->second.owner;
  if (it != w.keys.end() && it->second.uncertain) e.uncertain = true;
  return e;
}

// Whether the new key of a create or roll answer has an expiry (which the run may reach).
bool expires(const boost::json::object& token) {
  const auto* v = token.if_contains("expiresAt");
  return v && !v->is_null();
}

server::api_reply run(world& w, const server::http_request& request) {
  std::optional<server::api_reply> reply;
  std::exception_ptr failure;
  net::co_spawn(w.io, server::handle_api(request, w.service),
                [&reply, &failure](std::exception_ptr e, server::api_reply r) {
                  failure = e;
                  reply = std::move(r);
                });
  w.io.restart();
  // The store answers from its own thread: run until the handler is done, with a deadline so that
  // a request that never completes is reported as a hang instead of stalling the fuzzer.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!reply && std::chrono::steady_clock::now() < deadline) w.io.run_for(std::chrono::milliseconds(100));
  FUZZ_CHECK(reply.has_value(), "a request never completed");
  FUZZ_CHECK(!failure, "handle_api threw (the server would answer 500)");
  return std::move(*reply);
}

void check_reply(world& w, const server::http_request& request, const server::api_reply& reply) {
  const auto s = reply.status;
  FUZZ_CHECK(s == 200 || s == 400 || s == 401 || s == 403 || s == 404 || s == 405 || s == 415,
             "status outside 200/400/401/403/404/405/415 (no 5xx with a healthy store)");
  FUZZ_CHECK(reply.method_not_allowed == (s == 405), "Allow must come with 405 and only with it");
  FUZZ_CHECK(reply.verified.has_value() == (reply.route_label == server::route::verify && s == 200),
             "a verified user on anything but a 200 from /verify");
  FUZZ_CHECK(reply.bearer_challenge == (reply.route_label == server::route::verify && s == 401),
             "a Bearer challenge on anything but a 401 from /verify");
  // No key of the model is rate limited (the service has no default limit).
  FUZZ_CHECK(!reply.rate && !reply.rate_limited, "rate-limit state for a key without a limit");

  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(reply.body, ec);
  FUZZ_CHECK(!ec, "response body is not JSON");
  const auto& body = as_object(parsed, "response body is not an object");
  const auto* success = body.if_contains("success");
  FUZZ_CHECK(success && success->is_bool() && success->as_bool() == (s == 200),
             "success must be true exactly on 200");
  FUZZ_CHECK(!string_field(body, "message", "response without a message").empty(), "empty message");
  if (s != 200) FUZZ_CHECK(body.size() == 2, "an error body carries more than success and message");
  FUZZ_CHECK((reply.route_label == server::route::verify) == server::is_verify_target(request.target()),
             "the verify route label on a request that is not /verify, or the reverse");

  // Keys of the store are never shown again; a new one only in its own create response. Nor is a
  // caller's key echoed back when it is refused.
  FUZZ_CHECK(reply.body.find(unknown_key) == std::string::npos, "a refused key appears in a response");
  for (const auto& [key, state] : w.keys) {
    FUZZ_CHECK(reply.body.find(key) == std::string::npos, "a stored key appears in a response");
  }

  const expectation e = expect(request, w);
  if (!e.routed) {
    FUZZ_CHECK(s == 400 || s == 404 || s == 405, "a request outside the endpoint got past routing");
    return;
  }
  // A key near its expiry, or an old key in its overlap, may be refused by now. Once it is
  // accepted, the request is checked, and its effect modelled, like any other.
  if (e.uncertain && s == 401) return;
  // /verify reads Authorization by its own rule (gateway_key_of: another scheme carries no key of
  // ours there, since a gateway forwards the client's header as it is); the API refuses it.
  if (!e.caller || (!e.verify && ambiguous_authorization(request))) {
    FUZZ_CHECK(s == 401, "a request without a live key, or with ambiguous Authorization, was not a 401");
    return;
  }
  FUZZ_CHECK(s != 401, "a live key was refused");
  // No key here is an operator key: naming another user is refused, naming none or its own is not.
  const auto acting = e.verify ? server::parsed<server::acting_user>{}
                               : server::parse_user_id(*server::parse_request_target(request.target()));
  const bool other_user = acting.value && acting.value->user && *acting.value->user != *e.caller;
  if (other_user) FUZZ_CHECK(s == 400 || s == 403 || s == 415, "an admin key acted for another user");
  if (s == 403) {
    const auto asked = server::parse_create_body(request.body());
    FUZZ_CHECK(other_user || e.roll || e.operator_only || (asked && asked.value->type == "operator"),
               "403 without another user or an operator key asked for");
  }
  // No key here is an operator key: a rate limit change or the limited keys' view is always refused.
  if (e.operator_only) FUZZ_CHECK(s != 200, "an admin key changed a rate limit or saw the limited keys");
  if (s != 200) return;
  if (e.verify) {
    FUZZ_CHECK(reply.verified && reply.verified->user == e.caller, "/verify named another user");
    const auto* user = body.if_contains("userId");
    FUZZ_CHECK(user && user->is_number() && user->to_number<core::user_id>() == *e.caller,
               "/verify body userId");
    return;
  }

  if (e.roll) {
    const auto& t = as_object(*body.if_contains("token"), "roll response token is not an object");
    check_token_json(t, *e.caller, false);
    const auto asked = server::parse_roll_body(request.body());
    FUZZ_CHECK(asked.value.has_value(), "rolled from a body that does not parse");
    const auto* old = w.named(asked.value->old);
    FUZZ_CHECK(old != nullptr, "rolled a key the model does not know");
    auto& was = w.keys[*old];
    FUZZ_CHECK(was.listed && was.live && was.owner == *e.caller,
               "rolled a key that is not a live key of the caller");
    const auto& previous = as_object(*body.if_contains("previous"), "roll response without previous");
    FUZZ_CHECK(previous.at("id").to_number<std::uint64_t>() == was.id, "previous names another token");
    // Without overlap the old key is refused at once; with one, it ends during or after the run.
    if (asked.value->overlap == 0)
      was.live = false;
    else
      was.uncertain = true;
    const std::string key(string_field(t, "token", ""));
    FUZZ_CHECK(!w.keys.contains(key), "a new key collides with a known one");
    // A roll's new key is numbered like a create's, from the same sequence.
    const auto id = t.at("id").to_number<std::uint64_t>();
    FUZZ_CHECK(id == ++w.creations, "ids are not given in creation order");
    w.keys[key] = {*e.caller, true, id, true, expires(t)};
    return;
  }

  switch (request.method()) {
    case http::verb::post: {
      const auto* token = body.if_contains("token");
      FUZZ_CHECK(token, "create response without a token");
      const auto& t = as_object(*token, "create response token is not an object");
      check_token_json(t, *e.caller, false);
      const auto asked = server::parse_create_body(request.body());
      FUZZ_CHECK(asked && string_field(t, "description", "") == asked.value->description,
                 "created with a description other than the one asked for");
      const std::string key(string_field(t, "token", ""));
      FUZZ_CHECK(!w.keys.contains(key), "a new key collides with a known one");
      const auto id = t.at("id").to_number<std::uint64_t>();
      FUZZ_CHECK(id == ++w.creations, "ids are not given in creation order");
      w.keys[key] = {*e.caller, true, id, true, expires(t)};
      break;
    }
    case http::verb::get: {
      const auto* tokens = body.if_contains("tokens");
      FUZZ_CHECK(tokens && tokens->is_array(), "list response without a tokens array");
      const auto paging = server::parse_paging(*server::parse_request_target(request.target()));
      FUZZ_CHECK(paging && tokens->as_array().size() <= paging.value->page_size, "list longer than its page");
      for (const auto& t : tokens->as_array())
        check_token_json(as_object(t, "listed token is not an object"), *e.caller, true);
      FUZZ_CHECK(body.contains("hasMore") == paging.value->explicit_paging,
                 "paging fields without paging, or back");
      check_list_contents(w, *e.caller, *paging.value, body);
      break;
    }
    default: {
      const auto victim = server::parse_delete_body(request.body());
      FUZZ_CHECK(victim.value.has_value(), "deleted from a body that does not parse");
      const auto* named = w.named(*victim.value);
      FUZZ_CHECK(named != nullptr, "deleted a key the model does not know");
      auto& state = w.keys[*named];
      FUZZ_CHECK(state.listed && state.owner == *e.caller, "deleted a key that is not a key of the caller");
      state.live = false;
      state.listed = false;
      state.uncertain = false;
      break;
    }
  }
}

// A 404 to a delete whose victim is a key of the caller would be a lost delete; to a roll of a
// live one, a lost roll.
void check_not_found(const world& w, const server::http_request& request, const server::api_reply& reply,
                     const expectation& e) {
  if (reply.status != 404 || !e.caller) return;  // a 404 shows that an uncertain caller's key passed
  if (!e.roll && request.method() != http::verb::delete_) return;
  std::optional<server::token_selector> victim;
  if (e.roll) {
    if (auto asked = server::parse_roll_body(request.body()); asked.value) victim = asked.value->old;
  } else {
    victim = server::parse_delete_body(request.body()).value;
  }
  if (!victim) return;
  const auto acting = server::parse_user_id(*server::parse_request_target(request.target()));
  if (!acting.value || (acting.value->user && *acting.value->user != *e.caller)) return;
  const auto* named = w.named(*victim);
  if (named == nullptr) return;
  const auto& state = w.keys.at(*named);
  const bool found =
      state.listed && state.owner == *e.caller && (!e.roll || (state.live && !state.uncertain));
  FUZZ_CHECK(!found, e.roll ? "404 to the roll of a live key of the caller"
                            : "404 to the delete of a key of the caller");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool trace = std::getenv("TOKEND_FUZZ_TRACE") != nullptr;
  world w;
  const server::session_options limits;  // the server's defaults, as tokend serves them
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t arrived = 0;   // input bytes the connection has delivered
  std::size_t consumed = 0;  // input bytes the requests so far took
  std::string buffer;        // the session's read buffer: arrived but not consumed

  for (int n = 0; n < max_requests && (!buffer.empty() || arrived < input.size()); ++n) {
    // The session's read_request, with reads of at most what one read of the session brings.
    server::request_reader reader(limits.max_header_bytes, limits.max_body_bytes);
    const std::size_t start = consumed;
    boost::beast::error_code ec;
    for (;;) {
      ec = http::error::need_more;
      std::size_t used = 0;
      if (!buffer.empty()) {
        used = reader.feed(net::buffer(buffer), ec);
        buffer.erase(0, used);
        consumed += used;
      }
      FUZZ_CHECK(buffer.size() <= max_waiting(limits), "the bytes waiting for a request exceed its bounds");
      if (ec && ec != http::error::need_more) break;
      if (reader.is_done()) {
        ec = {};
        break;
      }
      if (!ec && used > 0 && !buffer.empty()) continue;
      if (arrived == input.size()) {  // the client stopped sending mid-request: no answer
        ec = http::error::partial_message;
        break;
      }
      const std::size_t n_read = std::min(read_size, input.size() - arrived);
      buffer.append(input.substr(arrived, n_read));
      arrived += n_read;
    }
    if (ec == http::error::partial_message) return 0;
    if (ec) {
      // Refused: one answer, then the connection closes, so nothing after it is ever a request.
      const unsigned status = server::status_for_read_error(ec);
      if (trace) std::fprintf(stderr, "http_fuzz: refused -> %u\n", status);
      FUZZ_CHECK(status == 400 || status == 413 || status == 431,
                 "a malformed request would be dropped without a 4xx");
      return 0;
    }

    const server::http_request request = reader.release();
    check_framing(request, input.substr(start, consumed - start), reader.header_bytes(), limits);
    const server::api_reply reply = run(w, request);
    // For seed authors: which status each request got (method and status only: targets hold keys).
    if (trace)
      std::fprintf(stderr, "http_fuzz: %s -> %u\n", std::string(request.method_string()).c_str(),
                   reply.status);
    const expectation before = expect(request, w);
    check_not_found(w, request, reply, before);
    check_reply(w, request, reply);
    if (!request.keep_alive()) break;
  }
  return 0;
}
