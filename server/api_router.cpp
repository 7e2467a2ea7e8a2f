// Request handling for /api/v2/tokens and /api/v2/tokens/roll, and the hand-off of /verify (see
// verify.hpp). Order of checks: path (404), method (405), key (401), content type (415), `userId`
// (400, then 403 unless the caller may act for that user), body (400 or 403), then the operation.
#include "server/api_router.hpp"

#include "core/error.hpp"
#include "core/expiry_policy.hpp"
#include "server/verify.hpp"

#include <boost/url/parse.hpp>

#include <cstdint>
#include <optional>
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
  const auto expiry = core::decide_expiry(policy, body.value->expiry, service.now());
  if (!expiry.ok()) co_return error_reply(400, expiry.problem, route::create);
  auto made = co_await service.create(a.owner, body.value->description, body.value->type, expiry.expires_at);
  if (!made) co_return error_reply(made.error(), route::create);
  co_return api_reply{200, created_body(*made), route::create, false};
}

api_reply busy_reply() {
  api_reply reply = error_reply(503, "Too many list responses in flight; retry later", route::list);
  reply.retry_after_seconds = 1;
  return reply;
}

net::awaitable<api_reply> list(const boost::urls::url_view& target, token_service& service, acting a,
                               response_budget* budget) {
  const auto paging = parse_paging(target);
  if (!paging.value) co_return error_reply(400, paging.problem, route::list);
  const auto& p = *paging.value;
  // Refused before the store read while nothing is left: a flood of lists then costs no reads.
  if (budget && budget->exhausted()) {
    budget->count_refusal();
    co_return busy_reply();
  }
  auto page = co_await service.list(a.owner, p.page * p.page_size, p.page_size);
  if (!page) co_return error_reply(page.error(), route::list);
  api_reply reply{200, list_body(*page, p), route::list, false};
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
  if (!a.who.operator_key) {
    const auto named = co_await key_named_by(service, *ref);
    if (!named) co_return error_reply(named.error(), route::roll);
    if (*named == named_key::operator_key) co_return error_reply(403, operator_create_refusal, route::roll);
  }
  auto rolled = co_await service.roll(*ref, expiry.expires_at, body.value->overlap);
  if (!rolled) co_return error_reply(rolled.error(), route::roll);
  co_return api_reply{200, rolled_body(*rolled), route::roll, false};
}

}  // namespace

authorization_values authorization_headers(const http_request& request) {
  authorization_values values;
  const auto [first, last] = request.equal_range(http::field::authorization);
  for (auto field = first; field != last; ++field) values.push_back(field->value());
  return values;
}

net::awaitable<api_reply> handle_api(const http_request& request, token_service& service,
                                     response_budget* budget, core::expiry_policy policy) {
  // Before the target is parsed: /verify reads its query itself, and refuses (401) what it cannot read.
  if (is_verify_target(request.target())) co_return co_await handle_verify(request, service);
  const auto target = boost::urls::parse_origin_form(request.target());
  if (!target) co_return error_reply(400, "Malformed request target");
  const auto path = target->encoded_path();
  route r = route::other;
  if (path == tokens_path) {
    r = route_of(request.method());
    if (r == route::other) co_return method_not_allowed(allowed_methods);
  } else if (path == roll_path) {
    if (request.method() != http::verb::post) co_return method_not_allowed(roll_allowed_methods);
    r = route::roll;
  } else {
    co_return error_reply(404, "Not Found");
  }

  const auto authorization = authorization_headers(request);
  const auto key = caller_key(*target, {authorization.data(), authorization.size()});
  if (!key) co_return error_reply(core::errc::unauthorized, r);
  const auto authenticated = co_await service.authenticate(*key);
  if (!authenticated) co_return error_reply(authenticated.error(), r);

  if (r != route::list && !content_type_acceptable(request)) {
    co_return error_reply(415, "Content-Type must be application/json (with no charset other than utf-8)", r);
  }
  const auto user = parse_user_id(*target);
  if (!user.value) co_return error_reply(400, user.problem, r);
  acting a{authenticated->user, *authenticated};
  if (const auto asked = user.value->user; asked && *asked != a.owner) {
    if (!a.who.operator_key) co_return error_reply(403, other_user_refusal, r);
    a.owner = *asked;
  }
  switch (r) {
    case route::create:
      co_return co_await create(request, service, a, policy);
    case route::list:
      co_return co_await list(*target, service, a, budget);
    case route::roll:
      co_return co_await roll(request, service, a, policy);
    default:
      co_return co_await remove(request, service, a);
  }
}

// NOLINTEND(cppcoreguidelines-avoid-reference-coroutine-parameters)

}  // namespace tokend::server
