// No key ever leaves tokend except in the one create response that hands it out. A full session
// of the real binary (access log on, debug level, admin listener on another address) creates,
// lists, pages, deletes and fails authentication in every way a key can travel (query, Bearer,
// path, body, other headers, request id, oversized requests, every source /verify reads); then
// everything observable is searched: stdout, stderr, every response (status line, headers, body; a
// create's new key removed from its own response), /metrics, /healthz and /readyz. Neither any key
// used nor any 16-character piece of one may appear, even once the output is percent-decoded and
// stripped of separators (so a key split by dashes or encoded as %61 in a path or request id is
// caught too).
#define BOOST_TEST_MODULE secrets_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "support/http_client.hpp"
#include "support/key_shapes.hpp"
#include "support/keys.hpp"
#include "support/tokend_server.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace http = boost::beast::http;
using tokend::test::connection;
using tokend::test::corrupt;
using tokend::test::exit_status;
using tokend::test::reply;
using tokend::test::sandbox;
using tokend::test::tokend_server;
using headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::size_t piece = 16;  // no run of this many characters of a key may appear

std::string tokens(const std::string& query = {}) { return "/api/v2/tokens" + query; }

using tokend::test::percent_encode_all;

// `text` in lower case, percent-decoded (twice), without the separators a split key may carry: the
// form in which a key shape sent by a client would show up whole.
std::string normalized(const std::string& text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out = text;
  for (int round = 0; round < 2; ++round) {
    std::string next;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] == '%' && i + 2 < out.size() && hex(out[i + 1]) >= 0 && hex(out[i + 2]) >= 0) {
        next.push_back(static_cast<char>(hex(out[i + 1]) * 16 + hex(out[i + 2])));
        i += 2;
      } else {
        next.push_back(out[i]);
      }
    }
    out = std::move(next);
  }
  std::string kept;
  for (char c : out) {
    if (std::string_view("-_.:/ \t+,;=~|").find(c) == std::string_view::npos) {
      kept.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return kept;
}

// Everything a client saw of a response.
std::string seen(const reply& r) {
  std::string out = std::to_string(r.status) + " " + r.error + "\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\n";
  return out + r.body + "\n";
}

class session {
 public:
  explicit session(std::uint16_t port) : c_(std::make_unique<connection>(port, 5s)), port_(port) {}

  reply send(http::verb method, const std::string& target, const std::string& body = {},
             const headers& h = {}) {
    // A fresh connection each time: a refused request closes its connection.
    c_ = std::make_unique<connection>(port_, 5s);
    reply r = c_->request(method, target, body, h);
    transcript += seen(r);
    return r;
  }

  // A request with a method of the client's making (an unknown one).
  reply send_method(const std::string& method, const std::string& target) {
    c_ = std::make_unique<connection>(port_, 5s);
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.method_string(method);
    reply r = c_->send(std::move(req));
    transcript += seen(r);
    return r;
  }

  // A create; the new key is returned and cut from the transcript (handing it out is the point).
  std::string create(const std::string& caller, const std::string& description) {
    reply r = c_->request(http::verb::post, tokens("?token=" + caller),
                          json::serialize(json::object{{"type", "admin"}, {"description", description}}));
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
    json::value v = r.json();
    const std::string key(v.at("token").at("token").as_string());
    v.as_object()["token"].as_object().erase("token");
    r.body = json::serialize(v);
    transcript += seen(r);
    return key;
  }

  std::string transcript;

 private:
  std::unique_ptr<connection> c_;
  std::uint16_t port_;
};

BOOST_AUTO_TEST_CASE(no_key_in_any_output_with_admin_on_another_address) {
  sandbox box;
  const std::string admin = tokend::core::generate_key();
  const std::string stranger = tokend::core::generate_key();  // well-formed, never stored
  std::vector<std::string> keys{admin, stranger};
  std::string observed;  // everything but the processes' own output, which is read at the end

  tokend_server::options options;
  options.args = {"--access-log", "--log-level", "debug"};
  options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + admin};
  options.admin_host = "127.0.0.2";  // the admin listener apart from the API
  {
    tokend_server server(box, options);
    const auto api = server.api_port();
    const auto admin_port = server.admin_port();

    // The admin listener answers on 127.0.0.2 only; the API port serves no admin route.
    BOOST_TEST(connection(admin_port, 2s, "127.0.0.2").request(http::verb::get, "/healthz").status == 200u);
    BOOST_CHECK_THROW(connection(admin_port, 2s, "127.0.0.1"), std::runtime_error);
    for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
      BOOST_TEST_CONTEXT(path) {
        BOOST_TEST(tokend::test::request(api, http::verb::get, path).status == 404u);
      }
    }

    session s(api);
    std::vector<std::string> made;
    for (int i = 0; i < 3; ++i) made.push_back(s.create(admin, "secret session " + std::to_string(i)));
    keys.insert(keys.end(), made.begin(), made.end());
    const std::string bad_checksum = corrupt(made[0]);
    keys.push_back(bad_checksum);

    // Successes, each way a key may travel.
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + made[0])).status == 200u);
    BOOST_TEST(s.send(http::verb::get, tokens(), {}, {{"Authorization", "Bearer " + made[1]}}).status ==
               200u);
    BOOST_TEST(s.send(http::verb::get, tokens("?page=0&pageSize=2&token=" + admin)).status == 200u);
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + percent_encode_all(made[1]))).status == 200u);

    // Authentication failures.
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + stranger)).status == 401u);
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + bad_checksum)).status == 401u);
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + made[0].substr(0, 40))).status == 401u);
    BOOST_TEST(
        s.send(http::verb::get, tokens("?token=" + made[0]), {}, {{"Authorization", "Bearer " + made[1]}})
            .status == 401u);
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + made[0] + "&token=" + made[1])).status == 401u);
    BOOST_TEST(s.send(http::verb::get, tokens(), {}, {{"Authorization", "Bearer " + stranger}}).status ==
               401u);
    BOOST_TEST(s.send(http::verb::get, tokens(), {}, {{"Authorization", "Basic " + made[0]}}).status == 401u);

    // Keys where they do not belong: path, request id, other headers, bodies, bad parameters.
    BOOST_TEST(s.send(http::verb::get, tokens("/" + made[2] + "?token=" + made[2])).status == 404u);
    BOOST_TEST(s.send(http::verb::get, "/" + made[2]).status == 404u);
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + admin), {},
                      {{"X-Request-Id", made[2]},
                       {"User-Agent", made[2]},
                       {"Referer", "http://x/?token=" + made[2]},
                       {"Cookie", "token=" + made[2]}})
                   .status == 200u);
    // Shapes of a key (upper case, cut short, split, percent-encoded, inside other text) in the path,
    // the request id and the method: never echoed, never logged.
    for (const auto& [name, shape] : tokend::test::key_shapes(made[1], true)) {
      BOOST_TEST_CONTEXT(name) {
        BOOST_TEST(s.send(http::verb::get, tokens("/" + shape + "?token=" + admin)).status == 404u);
        BOOST_TEST(s.send(http::verb::get, "/x/" + shape + "/y").status == 404u);
        const auto r = s.send(http::verb::get, tokens("?token=" + admin), {}, {{"X-Request-Id", shape}});
        BOOST_TEST(r.status == 200u);
        BOOST_TEST(r.header("x-request-id") != shape);
        BOOST_TEST(s.send_method(shape, tokens("?token=" + admin)).status >= 400u);
      }
    }
    BOOST_TEST(s.send(http::verb::get, tokens("?pageSize=" + made[2] + "&token=" + admin)).status == 400u);
    BOOST_TEST(s.send(http::verb::put, tokens("?token=" + made[2])).status == 405u);
    BOOST_TEST(s.send(http::verb::post, tokens("?token=" + admin), "{\"type\":\"" + made[2]).status == 400u);
    BOOST_TEST(s.send(http::verb::post, tokens("?token=" + admin),
                      json::serialize(json::object{{"type", made[2]}, {"description", "x"}}))
                   .status == 400u);
    BOOST_TEST(s.send(http::verb::post, tokens("?token=" + admin), "token=" + made[2],
                      {{"Content-Type", "application/x-www-form-urlencoded"}})
                   .status == 415u);
    BOOST_TEST(s.send(http::verb::delete_, tokens("?token=" + admin),
                      json::serialize(json::object{{"token", stranger}}))
                   .status == 404u);
    BOOST_TEST(s.send(http::verb::delete_, tokens("?token=" + admin),
                      json::serialize(json::object{{"token", bad_checksum}}))
                   .status == 404u);

    // Refused while reading: a key in the oversized header block, and in the oversized body.
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + made[2]), {},
                      {{"Authorization", "Bearer " + made[2]}, {"X-Pad", std::string(16 * 1024, 'p')}})
                   .status == 431u);
    BOOST_TEST(s.send(http::verb::post, tokens("?token=" + made[2]),
                      json::serialize(json::object{{"type", "admin"},
                                                   {"description", std::string(64 * 1024, 'd') + made[2]}}))
                   .status == 413u);

    // The gateway check (/verify), with a key in every source it reads and the headers gateways add.
    const auto verify = [&s](const headers& h, const std::string& target = "/verify") {
      return s.send(http::verb::get, target, {}, h).status;
    };
    BOOST_TEST(verify({{"Authorization", "Bearer " + made[0]}}) == 200u);
    BOOST_TEST(verify({}, "/verify?token=" + made[0]) == 200u);
    BOOST_TEST(verify({{"X-Original-URI", "/api/items?token=" + made[0]}}) == 200u);
    BOOST_TEST(verify({{"X-Original-URL", "https://api.example/items?token=" + percent_encode_all(made[1])},
                       {"X-Original-Method", "GET"},
                       {"X-Auth-Request-Redirect", "/items?token=" + made[1]}}) == 200u);
    BOOST_TEST(
        s.send(http::verb::post, "/verify/api/items?page=1&token=" + made[1], {}, {{"Content-Length", "0"}})
            .status == 200u);
    BOOST_TEST(verify({{"X-Forwarded-Uri", "/items?token=" + admin},
                       {"X-Forwarded-Method", "DELETE"},
                       {"X-Forwarded-Host", "api.example"},
                       {"X-Forwarded-Proto", "https"}}) == 200u);
    BOOST_TEST(verify({}, "/verify/" + made[0] + "/x?token=" + made[0]) == 200u);
    for (const auto& bad : {stranger, bad_checksum, made[0].substr(0, 40)}) {
      BOOST_TEST(verify({}, "/verify?token=" + bad) == 401u);
      BOOST_TEST(verify({{"Authorization", "Bearer " + bad}}) == 401u);
      BOOST_TEST(verify({{"X-Original-URI", "/a?token=" + bad}}) == 401u);
      BOOST_TEST(verify({{"X-Original-URL", "http://h/a?token=" + bad}}) == 401u);
      BOOST_TEST(verify({{"X-Forwarded-Uri", "/a?token=" + bad}}) == 401u);
    }
    BOOST_TEST(verify({{"X-Forwarded-Uri", "/a?token=" + made[1]}}, "/verify?token=" + made[0]) == 401u);
    BOOST_TEST(verify({{"X-Original-URI", "/a?token=" + made[0] + "#" + made[1]}}) == 401u);
    BOOST_TEST(verify({{"X-Original-URI", "/a?x=%zz&token=" + made[0]}}) == 401u);

    // Delete one; it then fails like any unknown key.
    BOOST_TEST(s.send(http::verb::delete_, tokens("?token=" + admin),
                      json::serialize(json::object{{"token", made[2]}}))
                   .status == 200u);
    BOOST_TEST(s.send(http::verb::get, tokens("?token=" + made[2])).status == 401u);
    BOOST_TEST(verify({{"X-Original-URI", "/a?token=" + made[2]}}) == 401u);
    BOOST_TEST(s.send(http::verb::delete_, tokens("?token=" + admin),
                      json::serialize(json::object{{"token", made[2]}}))
                   .status == 404u);

    // The admin listener's view, queried with keys too.
    connection admin_conn(admin_port, 5s, "127.0.0.2");
    for (const std::string& path : std::vector<std::string>{"/metrics", "/healthz", "/readyz",
                                                            "/metrics?token=" + made[0], "/" + made[0]}) {
      const auto r = admin_conn.request(http::verb::get, path);
      BOOST_TEST(r.status != 0u, path.substr(0, 10));
      observed += seen(r);
    }
    BOOST_TEST(observed.find("tokend_http_requests_total") != std::string::npos);
    observed += s.transcript;
    BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
  }

  const std::string output = box.all_output();
  // The check below proves something only if the output is really there.
  BOOST_TEST(output.find("\"msg\":\"access\"") != std::string::npos, "no access log captured");
  BOOST_TEST(output.find("\"level\":\"debug\"") != std::string::npos, "no debug line captured");
  std::string everything = output + observed;
  std::transform(everything.begin(), everything.end(), everything.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string flattened = normalized(output + observed);
  for (const auto& key : keys) {
    std::size_t found = 0;
    std::size_t found_flattened = 0;
    for (std::size_t at = 0; at + piece <= key.size(); ++at) {
      found += everything.find(key.substr(at, piece)) != std::string::npos;
      found_flattened += flattened.find(key.substr(at, piece)) != std::string::npos;
    }
    BOOST_TEST(found == 0u, "key " << key.substr(0, 6) << "...: " << found << " of its " << piece
                                   << "-character pieces appear in the output");
    BOOST_TEST(found_flattened == 0u,
               "key " << key.substr(0, 6) << "...: " << found_flattened << " of its " << piece
                      << "-character pieces appear in the decoded output without separators");
  }
}

}  // namespace
