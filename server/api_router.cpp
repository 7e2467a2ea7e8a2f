// Request handling for /api/v2/tokens, and the hand-off of /verify (see verify.hpp). Order of
// checks: path (404), method (405), key (401), content type (415), body or parameters (400), then
// the operation.
#include "server/api_router.hpp"

#include "core/error.hpp"
#include "server/verify.hpp"

#include <boost/url/parse.hpp>

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

// A body-carrying request must be JSON when it says what it is; a missing Content-Type is taken
// as JSON because many clients (and curl -d with -H omitted by mistake) send none.
bool content_type_acceptable(const http_request& request) {
  const auto it = request.find(http::field::content_type);
  return it == request.end() || is_json_content_type(it->value());
}

// Every coroutine of the router is awaited at once by its caller, whose frame owns the request and
// the service outlives them all, so their reference parameters cannot dangle.
// NOLINTBEGIN(cppcoreguidelines-avoid-reference-coroutine-parameters): see the line above
net::awaitable<api_reply> create(const http_request& request, token_service& service, core::user_id caller) {
  const auto body = parse_create_body(request.body());
  if (!body.value) co_return error_reply(400, body.problem, route::create);
  auto made = co_await service.create(caller, body.value->description, body.value->type);
  if (!made) co_return error_reply(made.error(), route::create);
  co_return api_reply{200, created_body(*made), route::create, false};
}

api_reply busy_reply() {
  api_reply reply = error_reply(503, "Too many list responses in flight; retry later", route::list);
  reply.retry_after_seconds = 1;
  return reply;
}

net::awaitable<api_reply> list(const boost::urls::url_view& target, token_service& service,
                               core::user_id caller, response_budget* budget) {
  const auto paging = parse_paging(target);
  if (!paging.value) co_return error_reply(400, paging.problem, route::list);
  const auto& p = *paging.value;
  // Refused before the store read while nothing is left: a flood of lists then costs no reads.
  if (budget && budget->exhausted()) {
    budget->count_refusal();
    co_return busy_reply();
  }
  auto page = co_await service.list(caller, p.page * p.page_size, p.page_size);
  if (!page) co_return error_reply(page.error(), route::list);
  api_reply reply{200, list_body(*page, p), route::list, false};
  if (budget) {
    // Built on this thread without suspending, so at most one unaccounted answer per io thread.
    reply.hold = budget->try_acquire(reply.body.capacity());
    if (!reply.hold) co_return busy_reply();
  }
  co_return reply;
}

net::awaitable<api_reply> remove(const http_request& request, token_service& service, core::user_id caller) {
  const auto victim = parse_delete_body(request.body());
  if (!victim.value) co_return error_reply(400, victim.problem, route::remove);
  const auto ref = token_ref_of_key(caller, *victim.value);
  if (!ref) co_return error_reply(core::errc::not_found, route::remove);
  const auto ec = co_await service.remove(*ref);
  if (ec) co_return error_reply(ec, route::remove);
  co_return api_reply{200, deleted_body(), route::remove, false};
}

}  // namespace

authorization_values authorization_headers(const http_request& request) {
  authorization_values values;
  const auto [first, last] = request.equal_range(http::field::authorization);
  for (auto field = first; field != last; ++field) values.push_back(field->value());
  return values;
}

net::awaitable<api_reply> handle_api(const http_request& request, token_service& service,
                                     response_budget* budget) {
  // Before the target is parsed: /verify reads its query itself, and refuses (401) what it cannot read.
  if (is_verify_target(request.target())) co_return co_await handle_verify(request, service);
  const auto target = boost::urls::parse_origin_form(request.target());
  if (!target) co_return error_reply(400, "Malformed request target");
  if (target->encoded_path() != tokens_path) co_return error_reply(404, "Not Found");

  const route r = route_of(request.method());
  if (r == route::other) {
    api_reply reply = error_reply(405, "Method Not Allowed");
    reply.method_not_allowed = true;
    co_return reply;
  }

  const auto authorization = authorization_headers(request);
  const auto key = caller_key(*target, {authorization.data(), authorization.size()});
  if (!key) co_return error_reply(core::errc::unauthorized, r);
  const auto authenticated = co_await service.authenticate(*key);
  if (!authenticated) co_return error_reply(authenticated.error(), r);
  const core::user_id caller = authenticated->user;

  if (r != route::list && !content_type_acceptable(request)) {
    co_return error_reply(415, "Content-Type must be application/json (with no charset other than utf-8)", r);
  }
  switch (r) {
    case route::create:
      co_return co_await create(request, service, caller);
    case route::list:
      co_return co_await list(*target, service, caller, budget);
    default:
      co_return co_await remove(request, service, caller);
  }
}

// NOLINTEND(cppcoreguidelines-avoid-reference-coroutine-parameters)

}  // namespace tokend::server
