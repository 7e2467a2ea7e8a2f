// Request handling for /api/v2/tokens, /api/v2/tokens/roll, /api/v2/tokens/limited and
// /api/v2/tokens/quota, and the hand-off of /verify (see verify.hpp). Order of checks: path (404), method
// (405), key (401), the key's rate limit (429), content type (415), `userId` (400, then 403 unless the caller
// may act for that user), operator-only operations (403), body (400 or 403), then the operation.
#include "server/api_router.hpp"

#include "core/error.hpp"
#include "core/expiry_policy.hpp"
#include "core/list_cursor.hpp"
#include "server/verify.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <variant>

namespace tokend::server {
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

route route_of(http::verb method) {
  switch (method) {
    case http::verb::post:
      return route::create;
    case http::verb::get:
      return route::list;
    case http::verb::delete_:
      return route::remove;
    case http::verb::patch:
      return route::update;
    default:
      return route::other;
  }
}

api_reply method_not_allowed(std::string_view allow) {
  api_reply reply = error_reply(405, "Method Not Allowed");
  reply.method_not_allowed = true;
  reply.allow = allow;
  return reply;
}

// A body-carrying request must be JSON when it says what it is; a missing Content-Type is taken
// as JSON because many clients (and curl -d with -H omitted by mistake) send none.
bool content_type_acceptable(const http_request& request) {
  const auto it = request.find(http::field::content_type);
  return it == request.end() || is_json_content_type(it->value());
}

// Who an operation acts for: the caller's own user, or with an operator key the one `userId` names.
struct acting {
  core::user_id owner = 0;
  caller who;
};

// The token a delete or roll names among `owner`'s; nullopt for a malformed key, which names none.
std::optional<storage::token_ref> ref_of(core::user_id owner, const token_selector& selector) {
  if (selector.key) return token_ref_of_key(owner, *selector.key);
  return storage::token_ref{owner, selector.id};
}

// The store's answer to a lookup, resumed on the awaiting coroutine's executor, never on a storage
// thread. In a wrapper, so that the result is handed over as it is. Not a coroutine itself.
struct looked_up {
  boost::system::result<std::optional<storage::key_info>> value;
};
net::awaitable<looked_up> look_up(storage::token_store& store, const core::key_digest& digest) {
  return net::async_initiate<decltype(net::use_awaitable), void(looked_up)>(
      [&store, digest](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        store.async_lookup(digest, [shared](boost::system::result<std::optional<storage::key_info>> v) {
          auto ex = net::get_associated_executor(*shared);
          net::post(ex, [shared, v = std::move(v)]() mutable { (*shared)(looked_up{std::move(v)}); });
        });
      },
      net::use_awaitable);
}

bool names(const core::token_record& r, const storage::token_ref& ref) {
  if (const auto* id = std::get_if<std::uint64_t>(&ref.which)) return r.id == *id;
  return r.digest == std::get<core::key_digest>(ref.which);
}

// Every coroutine of the router is awaited at once by its caller, whose frame owns the request and
// the service outlives them all, so their reference parameters cannot dangle.
// NOLINTBEGIN(cppcoreguidelines-avoid-reference-coroutine-parameters): see the line above
net::awaitable<api_reply> create(const http_request& request, token_service& service, acting a,
                                 core::expiry_policy policy) {
  const auto body = parse_create_body(request.body());
  if (!body.value) co_return error_reply(400, body.problem, route::create);
  if (body.value->type == core::operator_type && !a.who.operator_key) {
    co_return error_reply(403, operator_create_refusal, route::create);
  }
  // A user may tighten a key's limit; loosening the operator's default is the operator's call.
  if (!a.who.operator_key && !core::within_rate_limit(body.value->rate_limit, service.default_rate_limit())) {
    co_return error_reply(403, generous_limit_refusal, route::create);
  }
  const auto expiry = core::decide_expiry(policy, body.value->expiry, service.now());
  if (!expiry.ok()) co_return error_reply(400, expiry.problem, route::create);
  auto made = co_await service.create(a.owner, body.value->description, body.value->type, expiry.expires_at,
                                      body.value->rate_limit);
  if (!made && made.error() == core::errc::quota_exceeded) {
    // Only a refused create pays this read: the answer names the bound that applies.
    const auto quota = co_await service.quota(a.owner);
    if (quota) co_return token_limit_reply(quota->max_tokens, route::create);
  }
  if (!made) co_return error_reply(made.error(), route::create);
  co_return api_reply{200, created_body(*made), route::create, false};
}

api_reply busy_reply() {
  api_reply reply = error_reply(503, "Too many list responses in flight; retry later", route::list);
  reply.retry_after_seconds = 1;
  return reply;
}

net::awaitable<api_reply> list(const request_target& target, token_service& service, acting a,
                               response_budget* budget) {
  const auto paging = parse_paging(target);
  if (!paging.value) co_return error_reply(400, paging.problem, route::list);
  const auto& p = *paging.value;
  std::optional<core::list_position> from;
  if (p.cursor) {
    // Another user's cursor is refused as a forged one: the answer does not say whose it is.
    from = core::decode_list_cursor(service.cursor_secret(), *p.cursor);
    if (!from || from->owner != a.owner) co_return error_reply(400, invalid_cursor_problem, route::list);
  }
  // Refused before the store read while nothing is left: a flood of lists then costs no reads.
  if (budget && budget->exhausted()) {
    budget->count_refusal();
    co_return busy_reply();
  }
  boost::system::result<storage::list_page> page = core::errc::internal;
  if (from) {
    page = co_await service.list_after(a.owner, from->after_id, p.page_size);
  } else {
    page = co_await service.list(a.owner, p.page * p.page_size, p.page_size);
  }
  if (!page) co_return error_reply(page.error(), route::list);
  std::string next;
  if (page->has_more && !page->tokens.empty())
    next = core::encode_list_cursor(service.cursor_secret(), {a.owner, page->tokens.back().id});
  api_reply reply{200, list_body(*page, p, next), route::list, false};
  if (budget) {
    // Built on this thread without suspending, so at most one unaccounted answer per io thread.
    reply.hold = budget->try_acquire(reply.body.capacity());
    if (!reply.hold) co_return busy_reply();
  }
  co_return reply;
}

net::awaitable<api_reply> remove(const http_request& request, token_service& service, acting a) {
  const auto victim = parse_delete_body(request.body());
  if (!victim.value) co_return error_reply(400, victim.problem, route::remove);
  const auto ref = ref_of(a.owner, *victim.value);
  if (!ref) co_return error_reply(core::errc::not_found, route::remove);
  const auto ec = co_await service.remove(*ref);
  if (ec) co_return error_reply(ec, route::remove);
  co_return api_reply{200, deleted_body(), route::remove, false};
}

enum class named_key { absent, admin, operator_key };

// What `ref` names. A roll keeps the key's type, so an admin key rolling its user's operator key
// would obtain an operator key: only operator callers may. Read from the owner's list (rolls are
// rare, and the list cache often answers).
net::awaitable<boost::system::result<named_key>> key_named_by(token_service& service,
                                                              storage::token_ref ref) {
  constexpr std::size_t page = 1000;
  for (std::size_t offset = 0;; offset += page) {
    auto tokens = co_await service.list(ref.owner, offset, page);
    if (!tokens) co_return tokens.error();
    for (const auto& r : tokens->tokens) {
      if (names(r, ref)) co_return r.type == core::operator_type ? named_key::operator_key : named_key::admin;
    }
    if (!tokens->has_more) co_return named_key::absent;
  }
}

net::awaitable<api_reply> roll(const http_request& request, token_service& service, acting a,
                               core::expiry_policy policy) {
  const auto body = parse_roll_body(request.body());
  if (!body.value) co_return error_reply(400, body.problem, route::roll);
  const auto ref = ref_of(a.owner, body.value->old);
  if (!ref) co_return error_reply(core::errc::not_found, route::roll);
  const auto expiry = core::decide_expiry(policy, body.value->expiry, service.now());
  if (!expiry.ok()) co_return error_reply(400, expiry.problem, route::roll);
  const auto& asked = body.value->rate_limit;
  if (!a.who.operator_key && asked.replace &&
      !core::within_rate_limit(asked.limit, service.default_rate_limit())) {
    co_return error_reply(403, generous_limit_refusal, route::roll);
  }
  if (!a.who.operator_key) {
    const auto named = co_await key_named_by(service, *ref);
    if (!named) co_return error_reply(named.error(), route::roll);
    if (*named == named_key::operator_key) co_return error_reply(403, operator_create_refusal, route::roll);
  }
  auto rolled = co_await service.roll(*ref, expiry.expires_at, body.value->overlap, body.value->rate_limit);
  if (!rolled) co_return error_reply(rolled.error(), route::roll);
  co_return api_reply{200, rolled_body(*rolled), route::roll, false};
}

// PATCH /api/v2/tokens: a token's own rate limit, set or cleared (operator keys only).
net::awaitable<api_reply> update(const http_request& request, token_service& service, acting a) {
  if (!a.who.operator_key) co_return error_reply(403, rate_limit_change_refusal, route::update);
  const auto body = parse_rate_limit_body(request.body());
  if (!body.value) co_return error_reply(400, body.problem, route::update);
  const auto ref = ref_of(a.owner, body.value->target);
  if (!ref) co_return error_reply(core::errc::not_found, route::update);
  std::uint64_t id = body.value->target.id;
  if (body.value->target.key) {
    // The answer names the token by id, which a key does not give: one read of the store, on an
    // operator's rare request.
    const auto found = (co_await look_up(service.store(), std::get<core::key_digest>(ref->which))).value;
    if (!found) co_return error_reply(found.error(), route::update);
    const std::optional<storage::key_info>& info = *found;
    if (!info || info->owner != a.owner) co_return error_reply(core::errc::not_found, route::update);
    id = info->id;
  }
  const auto ec = co_await service.set_rate_limit(*ref, body.value->rate_limit);
  if (ec) co_return error_reply(ec, route::update);
  co_return api_reply{200, rate_limit_updated_body(id, body.value->rate_limit), route::update, false};
}

// GET /api/v2/tokens/limited: this instance's most refused keys (operator keys only).
net::awaitable<api_reply> limited(const request_target& target, token_service& service, acting a) {
  if (!a.who.operator_key) co_return error_reply(403, limited_view_refusal, route::limited);
  const auto n = parse_limited_count(target);
  if (!n.value) co_return error_reply(400, n.problem, route::limited);
  auto keys = co_await service.top_limited(*n.value);
  if (!keys) co_return error_reply(keys.error(), route::limited);
  co_return api_reply{200, limited_body(*keys), route::limited, false};
}

// GET /api/v2/tokens/quota: the user's count and bound. PUT: an operator gives a user its own
// bound, or takes it back (the body names the user; a `userId` in the query must agree).
net::awaitable<api_reply> quota(const http_request& request, const request_target& target,
                                token_service& service, acting a) {
  if (request.method() == http::verb::get) {
    auto q = co_await service.quota(a.owner);
    if (!q) co_return error_reply(q.error(), route::quota);
    co_return api_reply{200, quota_body(a.owner, *q), route::quota, false};
  }
  if (!a.who.operator_key) co_return error_reply(403, token_bound_change_refusal, route::quota);
  const auto body = parse_quota_body(request.body());
  if (!body.value) co_return error_reply(400, body.problem, route::quota);
  const auto in_query = parse_user_id(target);
  if (in_query.value && in_query.value->user && *in_query.value->user != body.value->user)
    co_return error_reply(400, "Query parameter 'userId' and field 'userId' name different users",
                          route::quota);
  auto q = co_await service.set_max_tokens(body.value->user, body.value->max_tokens);
  if (!q) co_return error_reply(q.error(), route::quota);
  co_return api_reply{200, quota_body(body.value->user, *q), route::quota, false};
}

// The refusals every operation shares once its caller is admitted: a body that is not JSON (415),
// a bad `userId` (400), or another user named by a key that may not act for them (403). Otherwise
// nullopt, and `a` acts for the user named. Not a coroutine: the common path costs no frame.
std::optional<api_reply> refusal_before_operation(const http_request& request, const request_target& target,
                                                  route r, acting& a) {
  const bool has_body =
      r != route::list && r != route::limited && (r != route::quota || request.method() != http::verb::get);
  if (has_body && !content_type_acceptable(request)) {
    return error_reply(415, "Content-Type must be application/json (with no charset other than utf-8)", r);
  }
  const auto user = parse_user_id(target);
  if (!user.value) return error_reply(400, user.problem, r);
  if (const auto asked = user.value->user; asked && *asked != a.owner) {
    if (!a.who.operator_key) return error_reply(403, other_user_refusal, r);
    a.owner = *asked;
  }
  return std::nullopt;
}

}  // namespace

authorization_values authorization_headers(const http_request& request) {
  authorization_values values;
  const auto [first, last] = request.equal_range(http::field::authorization);
  for (auto field = first; field != last; ++field) values.push_back(field->value());
  return values;
}

net::awaitable<api_reply> handle_api(const http_request& request, token_service& service,
                                     response_budget* budget, api_options options) {
  // Before the target is parsed: /verify reads its query itself, and refuses (401) what it cannot read.
  if (is_verify_target(request.target())) {
    co_return co_await handle_verify(request, service, options.verify_rate_limited_status);
  }
  const auto target = parse_request_target(request.target());
  if (!target) co_return error_reply(400, "Malformed request target");
  const auto path = target->path;
  route r = route::other;
  if (path == tokens_path) {
    r = route_of(request.method());
    if (r == route::other) co_return method_not_allowed(allowed_methods);
  } else if (path == roll_path) {
    if (request.method() != http::verb::post) co_return method_not_allowed(roll_allowed_methods);
    r = route::roll;
  } else if (path == limited_path) {
    if (request.method() != http::verb::get) co_return method_not_allowed(limited_allowed_methods);
    r = route::limited;
  } else if (path == quota_path) {
    if (request.method() != http::verb::get && request.method() != http::verb::put)
      co_return method_not_allowed(quota_allowed_methods);
    r = route::quota;
  } else {
    co_return error_reply(404, "Not Found");
  }

  const auto authorization = authorization_headers(request);
  const auto key = caller_key(*target, {authorization.data(), authorization.size()});
  if (!key) co_return error_reply(core::errc::unauthorized, r);
  const auto authenticated = co_await service.authenticate(*key);
  if (!authenticated) co_return error_reply(authenticated.error(), r);
  // Nothing else is done for a key over its limit: no body is read, no store asked.
  if (authenticated->rate_limited()) co_return rate_limited_reply(429, authenticated->rate, r);
  acting a{authenticated->user, *authenticated};
  api_reply reply;
  if (auto refused = refusal_before_operation(request, *target, r, a)) {
    reply = std::move(*refused);
  } else {
    switch (r) {
      case route::create:
        reply = co_await create(request, service, a, options.expiry);
        break;
      case route::list:
        reply = co_await list(*target, service, a, budget);
        break;
      case route::roll:
        reply = co_await roll(request, service, a, options.expiry);
        break;
      case route::update:
        reply = co_await update(request, service, a);
        break;
      case route::limited:
        reply = co_await limited(*target, service, a);
        break;
      case route::quota:
        reply = co_await quota(request, *target, service, a);
        break;
      default:
        reply = co_await remove(request, service, a);
        break;
    }
  }
  reply.rate = authenticated->rate;  // the headers of a limited key, on whatever the answer is
  co_return reply;
}

// NOLINTEND(cppcoreguidelines-avoid-reference-coroutine-parameters)

}  // namespace tokend::server
