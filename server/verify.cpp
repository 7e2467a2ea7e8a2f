// The /verify endpoint; see verify.hpp.
#include "server/verify.hpp"

#include "core/error.hpp"
#include "server/api_parsing.hpp"
#include "server/text_rules.hpp"

#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>

namespace tokend::server {
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

using text::hex_value;

constexpr std::size_t npos = std::string_view::npos;

// Percent-decodes `in`, '+' as a space (as caller_key's query parameters are), writing at most `cap`
// bytes to `out`. Returns the whole decoded size (even beyond `cap`), or nullopt for a broken escape.
std::optional<std::size_t> decode(std::string_view in, char* out, std::size_t cap) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < in.size(); ++i, ++n) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+') {
      c = ' ';
    }
    if (n < cap) out[n] = c;
  }
  return n;
}

// Gathers the candidates of one request; the first refusal sticks.
class collector {
 public:
  explicit collector(gateway_key& out) noexcept : out_(out) {}

  [[nodiscard]] bool refused() const noexcept {
    return out_.problem != key_problem::none && out_.problem != key_problem::missing;
  }
  void refuse(key_problem why) noexcept {
    if (!refused()) out_.problem = why;
  }

  void offer(std::string_view candidate) noexcept {
    if (refused()) return;
    if (candidate.size() > out_.text.size()) return refuse(key_problem::too_long);
    if (out_.problem == key_problem::missing) {
      std::copy(candidate.begin(), candidate.end(), out_.text.begin());
      out_.size = candidate.size();
      out_.problem = key_problem::none;
      return;
    }
    // Digests, never characters, are compared: the same rule as caller_key's.
    if (!first_digest_) first_digest_ = core::digest_key(out_.key());
    if (*first_digest_ != core::digest_key(candidate)) refuse(key_problem::conflicting);
  }

  // Every `token` parameter of a query string (without its '?'). A broken escape anywhere refuses:
  // a parser after the gateway might decode it into a key this check never saw.
  void offer_query(std::string_view query) noexcept {
    for (;;) {
      if (refused()) return;
      const auto amp = query.find('&');
      const auto param = query.substr(0, amp);
      const auto eq = param.find('=');
      const auto name = param.substr(0, eq);
      const auto value = eq == npos ? std::string_view{} : param.substr(eq + 1);
      char name_buf[5];
      const auto name_size = decode(name, name_buf, sizeof name_buf);
      if (!name_size) return refuse(key_problem::malformed_uri);
      if (*name_size == 5 && std::memcmp(name_buf, "token", 5) == 0) {
        std::array<char, core::key_hex_length> value_buf;
        const auto value_size = decode(value, value_buf.data(), value_buf.size());
        if (!value_size) return refuse(key_problem::malformed_uri);
        if (*value_size > value_buf.size()) return refuse(key_problem::too_long);
        offer({value_buf.data(), *value_size});
      } else if (!decode(value, nullptr, 0)) {
        return refuse(key_problem::malformed_uri);
      }
      if (amp == npos) return;
      query.remove_prefix(amp + 1);
    }
  }

 private:
  gateway_key& out_;
  std::optional<core::key_digest> first_digest_;
};

bool has_scheme(std::string_view uri) noexcept {
  const auto colon = uri.find(':');
  if (colon == npos || colon == 0 || !std::isalpha(static_cast<unsigned char>(uri[0]))) return false;
  return std::all_of(uri.begin() + 1, uri.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

// The query of a forwarded request URI, empty when it has none, or nullopt when the URI is not
// a request target as a gateway forwards one: origin-form or absolute (`absolute_only`: absolute),
// no whitespace or control character, and no fragment (a request target never has one, so a '#'
// could only hide a key from this check).
std::optional<std::string_view> forwarded_query(std::string_view uri, bool absolute_only) noexcept {
  for (const char c : uri) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '#') return std::nullopt;
  }
  const bool absolute = has_scheme(uri);
  if (absolute_only ? !absolute : !(absolute || uri.front() == '/')) return std::nullopt;
  const auto q = uri.find('?');
  return q == npos ? std::string_view{} : uri.substr(q + 1);
}

// One forwarded-URI header: absent, once (its query is offered), or repeated (refused).
void offer_forwarded(collector& keys, const http_request& request, std::string_view name,
                     bool absolute_only) {
  auto [it, end] = request.equal_range(name);
  if (it == end) return;
  if (std::next(it) != end) return keys.refuse(key_problem::repeated_header);
  const auto value = it->value();
  if (value.empty()) return;  // nothing forwarded, so nothing hidden
  const auto query = forwarded_query(std::string_view(value.data(), value.size()), absolute_only);
  if (!query) return keys.refuse(key_problem::malformed_uri);
  if (!query->empty()) keys.offer_query(*query);
}

api_reply refused_reply(api_reply reply) {
  reply.route_label = route::verify;
  reply.bearer_challenge = reply.status == 401;
  return reply;
}

std::string_view type_name(bool operator_key) noexcept {
  return operator_key ? core::operator_type : core::admin_type;
}

std::string allowed_body(const caller& who) {
  std::string body;
  body.reserve(96);  // one allocation: the whole body fits
  body += R"({"success":true,"message":"Authorized","userId":)";
  body += std::to_string(who.user);
  body += R"(,"type":")";
  body += type_name(who.operator_key);
  body += "\"}";
  return body;
}

}  // namespace

bool is_verify_target(std::string_view target) noexcept {
  const auto path = std::string_view(target.begin(), std::find_if(target.begin(), target.end(), [](char c) {
                                       return c == '?' || c == '#';
                                     }));
  return path == verify_path ||
         (path.size() > verify_path.size() && path.substr(0, verify_path.size()) == verify_path &&
          path[verify_path.size()] == '/');
}

gateway_key gateway_key_of(const http_request& request) noexcept {
  gateway_key out;
  collector keys(out);

  auto [auth, auth_end] = request.equal_range(http::field::authorization);
  if (auth != auth_end) {
    if (std::next(auth) != auth_end) {
      keys.refuse(key_problem::repeated_header);
      return out;
    }
    // Parsed as caller_key parses it: any other scheme carries no key of ours.
    if (const auto key = bearer_key(std::string_view(auth->value().data(), auth->value().size()))) {
      keys.offer(*key);
    }
  }

  const std::string_view target(request.target().data(), request.target().size());
  if (target.find('#') != npos) {
    keys.refuse(key_problem::malformed_uri);
    return out;
  }
  if (const auto q = target.find('?'); q != npos) keys.offer_query(target.substr(q + 1));

  offer_forwarded(keys, request, original_uri_header, false);
  offer_forwarded(keys, request, original_url_header, true);
  offer_forwarded(keys, request, forwarded_uri_header, false);
  return out;
}

// Awaited at once by handle_api, whose caller owns the request; the service outlives every request.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-reference-coroutine-parameters): see the line above
net::awaitable<api_reply> handle_verify(const http_request& request, token_service& service,
                                        unsigned rate_limited_status) {
  const gateway_key key = gateway_key_of(request);
  if (!key) co_return refused_reply(error_reply(core::errc::unauthorized, route::verify));
  const auto caller = co_await service.authenticate(key.key());
  if (!caller) co_return refused_reply(error_reply(caller.error(), route::verify));
  if (caller->rate_limited()) co_return rate_limited_reply(rate_limited_status, caller->rate, route::verify);
  api_reply reply{200, allowed_body(*caller), route::verify};
  reply.verified = *caller;
  reply.rate = caller->rate;
  co_return reply;
}

void add_verify_headers(const api_reply& reply, http_response& response) {
  if (reply.verified) {
    // Fields of their own, which nothing else sets: inserted without a search for an old one.
    std::array<char, 24> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), reply.verified->user).ptr;
    response.insert(user_id_header,
                    std::string_view(digits.data(), static_cast<std::size_t>(end - digits.data())));
    response.insert(token_type_header, type_name(reply.verified->operator_key));
  }
  if (reply.bearer_challenge) response.insert(http::field::www_authenticate, bearer_challenge);
}

}  // namespace tokend::server
