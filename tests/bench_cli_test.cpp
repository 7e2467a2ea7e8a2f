// Unit tests for tokend-bench's command line (bench/cli.cpp) and the requests it builds
// (bench/load.cpp serialize_requests, resolve_target): host names, --path, --method, repeated
// --header, and the verify and verify-fail scenarios.
#define BOOST_TEST_MODULE bench_cli_test
#include <boost/test/unit_test.hpp>

#include "bench/cli.hpp"
#include "bench/load.hpp"

#include <string>
#include <vector>

namespace bench = tokend::bench;
using bench::request_kind;

namespace {

const std::string key = "9fe4f9" + std::string(58, 'a');

bench::options parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"tokend-bench"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return bench::parse_args(static_cast<int>(argv.size()), argv.data());
}

std::string refusal(std::vector<std::string> args) {
  try {
    (void)parse(std::move(args));
  } catch (const bench::usage_error& e) {
    return e.what();
  }
  return "<accepted>";
}

const std::string& request_of(const bench::options& o, request_kind k) {
  static std::array<std::string, bench::request_kind_count> all;
  all = bench::serialize_requests(o.cfg);
  return all[static_cast<std::size_t>(k)];
}

std::size_t mix_of(const bench::options& o, request_kind k) { return o.cfg.mix[static_cast<std::size_t>(k)]; }

}  // namespace

BOOST_AUTO_TEST_CASE(host_names_are_kept_for_resolution) {
  auto o = parse({"--url", "http://tokend.tokend.svc.cluster.local:8080", "--scenario", "verify-fail"});
  BOOST_TEST(o.cfg.address == "tokend.tokend.svc.cluster.local");
  BOOST_TEST(o.cfg.port == 8080);
  BOOST_TEST(o.cfg.host_header == "tokend.tokend.svc.cluster.local:8080");
  o = parse({"--url", "http://tokend/", "--scenario", "verify-fail"});
  BOOST_TEST(o.cfg.address == "tokend");
  BOOST_TEST(o.cfg.port == 80);
  o = parse({"--url", "http://10.0.0.7:9000", "--scenario", "verify-fail"});
  BOOST_TEST(o.cfg.address == "10.0.0.7");
  o = parse({"--url", "http://[::1]:9000", "--scenario", "verify-fail"});
  BOOST_TEST(o.cfg.address == "::1");
  for (const char* bad : {"http://bad host:80", "http://-x.example", "http://a..b", "http://a:b",
                          "http://[tokend]", "http://x_y!.example", "http://::1"}) {
    BOOST_TEST(refusal({"--url", bad, "--scenario", "verify-fail"}) != "<accepted>", bad);
  }
}

BOOST_AUTO_TEST_CASE(resolve_target_turns_a_name_into_an_address) {
  auto o = parse({"--url", "http://localhost:8080", "--scenario", "verify-fail"});
  BOOST_TEST(o.cfg.address == "localhost");
  const auto err = bench::resolve_target(o.cfg);
  BOOST_TEST(!err.has_value(), err.value_or(""));
  BOOST_TEST((o.cfg.address == "127.0.0.1" || o.cfg.address == "::1"), o.cfg.address);
  o.cfg.address = "192.0.2.1";
  BOOST_TEST(!bench::resolve_target(o.cfg).has_value());
  BOOST_TEST(o.cfg.address == "192.0.2.1");
}

BOOST_AUTO_TEST_CASE(verify_scenarios) {
  auto o = parse({"--scenario", "verify", "--token", key});
  BOOST_TEST(mix_of(o, request_kind::verify) == 1u);
  BOOST_TEST(mix_of(o, request_kind::list) == 0u);
  const auto& verify = request_of(o, request_kind::verify);
  BOOST_TEST(verify.starts_with("GET /verify HTTP/1.1\r\n"), verify);
  BOOST_TEST(verify.find("Authorization: Bearer " + key + "\r\n") != std::string::npos, verify);
  BOOST_TEST(verify.find("token=") == std::string::npos, verify);

  o = parse({"--scenario", "verify-fail"});  // needs no key
  BOOST_TEST(mix_of(o, request_kind::verify_fail) == 1u);
  const auto& fail = request_of(o, request_kind::verify_fail);
  BOOST_TEST(fail.starts_with("GET /verify HTTP/1.1\r\n"), fail);
  const auto at = fail.find("Authorization: Bearer ");
  BOOST_REQUIRE(at != std::string::npos);
  const auto unknown = fail.substr(at + 22, fail.find("\r\n", at) - at - 22);
  BOOST_TEST(unknown.size() == 64u, unknown);  // well-formed, so the server looks it up

  BOOST_TEST(refusal({"--scenario", "verify"}).find("needs --token") != std::string::npos);
  o = parse({"--mix", "verify=3,verify-fail=1", "--token", key});
  BOOST_TEST(mix_of(o, request_kind::verify) == 3u);
  BOOST_TEST(mix_of(o, request_kind::verify_fail) == 1u);
  BOOST_TEST(bench::to_string(request_kind::verify_fail) == "verify-fail");
}

BOOST_AUTO_TEST_CASE(body_goes_with_every_request_as_json) {
  auto o = parse({"--scenario", "authfail", "--method", "POST", "--body", R"({"type":"admin"})"});
  const auto& authfail = request_of(o, request_kind::authfail);
  BOOST_TEST(authfail.starts_with("POST /api/v2/tokens?token="), authfail);
  BOOST_TEST(authfail.find("Content-Type: application/json\r\n") != std::string::npos, authfail);
  BOOST_TEST(authfail.find("Content-Length: 16\r\n") != std::string::npos, authfail);
  BOOST_TEST(authfail.ends_with("\r\n\r\n{\"type\":\"admin\"}"), authfail);
  // create's own body gives way to it; without it, a GET carries none
  BOOST_TEST(request_of(o, request_kind::create).ends_with(R"({"type":"admin"})"));
  o = parse({"--scenario", "authfail"});
  BOOST_TEST(request_of(o, request_kind::authfail).ends_with("\r\n\r\n"));
  BOOST_TEST(request_of(o, request_kind::create).ends_with(R"({"type":"admin","description":"bench"})"));
}

BOOST_AUTO_TEST_CASE(path_method_and_headers_shape_every_request) {
  auto o =
      parse({"--scenario", "verify", "--token", key, "--path", "/verify/api/items?page=2", "--method", "POST",
             "--header", "X-Original-URI: /api/items?token=" + key, "--header", "X-Forwarded-Method: PUT",
             "--header=X-Extra:  spaced", "--header", "X-Extra: twice", "--header", "Content-Length: 0"});
  BOOST_TEST(o.cfg.headers.size() == 5u);
  const auto& verify = request_of(o, request_kind::verify);
  BOOST_TEST(verify.starts_with("POST /verify/api/items?page=2 HTTP/1.1\r\n"), verify);
  BOOST_TEST(verify.find("X-Original-URI: /api/items?token=" + key + "\r\n") != std::string::npos, verify);
  BOOST_TEST(verify.find("X-Forwarded-Method: PUT\r\n") != std::string::npos, verify);
  BOOST_TEST(verify.find("X-Extra: spaced\r\n") != std::string::npos, verify);
  BOOST_TEST(verify.find("X-Extra: twice\r\n") != std::string::npos, verify);
  BOOST_TEST(verify.find("Content-Length: 0\r\n") != std::string::npos, verify);

  // the API's own requests: their key joins the given query
  o = parse({"--scenario", "list", "--token", key, "--path", "/api/v2/tokens?pageSize=5"});
  BOOST_TEST(request_of(o, request_kind::list)
                 .starts_with("GET /api/v2/tokens?pageSize=5&token=" + key + " HTTP/1.1"));
  o = parse({"--scenario", "list", "--token", key, "--path", "/other"});
  BOOST_TEST(request_of(o, request_kind::list).starts_with("GET /other?token=" + key + " HTTP/1.1"));

  // Host and Authorization given by hand replace the bench's own
  o = parse({"--scenario", "verify", "--token", key, "--header", "Host: api.example", "--header",
             "Authorization: Basic eA=="});
  const auto& replaced = request_of(o, request_kind::verify);
  BOOST_TEST(replaced.find("Host: api.example\r\n") != std::string::npos, replaced);
  BOOST_TEST(replaced.find("127.0.0.1:8080") == std::string::npos, replaced);
  BOOST_TEST(replaced.find("Bearer") == std::string::npos, replaced);

  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--header", "no colon"},
                                             {"--header", ": empty name"},
                                             {"--header", "Bad Name: x"},
                                             {"--header", "X: a\r\nInjected: b"},
                                             {"--path", "verify"},
                                             {"--path", "/a b"},
                                             {"--path", ""},
                                             {"--method", "GE T"},
                                             {"--method", ""},
                                             {"--header"}}) {
    std::vector<std::string> args{"--scenario", "verify-fail"};
    args.insert(args.end(), bad.begin(), bad.end());
    BOOST_TEST(refusal(args) != "<accepted>", bad.front() << " " << (bad.size() > 1 ? bad[1] : ""));
  }
}

BOOST_AUTO_TEST_CASE(help_documents_the_new_flags) {
  for (const char* word : {"--path", "--method", "--header", "verify-fail", "verify:", "host name"}) {
    BOOST_TEST(bench::help_text.find(word) != std::string_view::npos, word);
  }
  BOOST_TEST(parse({"--help"}).help);
}

BOOST_AUTO_TEST_CASE(report_takes_a_file_name) {
  BOOST_TEST(bench::help_text.find("--report FILE.html") != std::string_view::npos);
  BOOST_TEST(parse({"--scenario", "verify-fail", "--report", "out/run.html"}).report == "out/run.html");
  BOOST_TEST(parse({"--scenario", "verify-fail", "--report=r.html"}).report == "r.html");
  BOOST_TEST(parse({"--scenario", "verify-fail"}).report.empty());
  BOOST_TEST(refusal({"--scenario", "verify-fail", "--report="}) != "<accepted>");
  BOOST_TEST(refusal({"--scenario", "verify-fail", "--report"}) != "<accepted>");
}
