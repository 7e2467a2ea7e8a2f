// Logging without a socket: the --log-level filter, the --access-log and --log-level flags and their
// environment variables, request ids (X-Request-Id accepted only when sane, never a key), and the
// access-log fields (path without its query string, anything key-like redacted).
#define BOOST_TEST_MODULE observability_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "server/config.hpp"
#include "server/log.hpp"
#include "server/request_log.hpp"
#include "support/configure.hpp"
#include "support/key_shapes.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace server = tokend::server;
namespace logging = tokend::server::log;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

using tokend::test::configure;

bool refused(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  try {
    (void)configure(args, env);
  } catch (const server::config_error&) {
    return true;
  }
  return false;
}

// Runs `f` with stdout redirected to a temporary file and returns what it printed.
template <class F>
std::string capture_stdout(F f) {
  namespace fs = std::filesystem;
  const fs::path path =
      fs::temp_directory_path() / ("tokend-observability-" + std::to_string(::getpid()) + ".out");
  std::fflush(stdout);
  const int saved = ::dup(STDOUT_FILENO);
  BOOST_REQUIRE(saved >= 0);
  std::FILE* file = std::fopen(path.c_str(), "w");
  BOOST_REQUIRE(file);
  ::dup2(::fileno(file), STDOUT_FILENO);
  f();
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  std::fclose(file);
  std::ifstream in(path, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::error_code ignored;
  fs::remove(path, ignored);
  return text;
}

std::vector<json::object> lines_of(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const json::value v = json::parse(line);  // throws on a line that is not JSON
    BOOST_REQUIRE(v.is_object());
    out.push_back(v.as_object());
  }
  return out;
}

bool is_rfc3339_utc_millis(std::string_view text) {
  static const std::regex form(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  return std::regex_match(text.begin(), text.end(), form);
}

// Restores the default level after a test case that changes it.
struct level_guard {
  ~level_guard() { logging::set_level(logging::level::info); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(flags)

BOOST_AUTO_TEST_CASE(defaults_are_info_and_no_access_log) {
  const auto c = configure({});
  BOOST_TEST((c.log_level == logging::level::info));
  BOOST_TEST(!c.access_log);
}

BOOST_AUTO_TEST_CASE(log_level_from_flag_and_environment) {
  BOOST_TEST((configure({"--log-level", "debug"}).log_level == logging::level::debug));
  BOOST_TEST((configure({"--log-level=warn"}).log_level == logging::level::warn));
  BOOST_TEST((configure({"--log-level=error"}).log_level == logging::level::error));
  BOOST_TEST((configure({}, {{"TOKEND_LOG_LEVEL", "debug"}}).log_level == logging::level::debug));
  BOOST_TEST(
      (configure({"--log-level=info"}, {{"TOKEND_LOG_LEVEL", "error"}}).log_level == logging::level::info));
  BOOST_TEST(refused({"--log-level=verbose"}));
  BOOST_TEST(refused({"--log-level"}));
  BOOST_TEST(refused({}, {{"TOKEND_LOG_LEVEL", "DEBUG!"}}));
}

BOOST_AUTO_TEST_CASE(access_log_switch) {
  BOOST_TEST(configure({"--access-log"}).access_log);
  BOOST_TEST(configure({"--access-log=true"}).access_log);
  BOOST_TEST(!configure({"--access-log=false"}).access_log);
  BOOST_TEST(configure({}, {{"TOKEND_ACCESS_LOG", "1"}}).access_log);
  BOOST_TEST(!configure({"--no-access-log"}, {{"TOKEND_ACCESS_LOG", "true"}}).access_log);
  BOOST_TEST(configure({"--access-log"}, {{"TOKEND_ACCESS_LOG", "false"}}).access_log);
  BOOST_TEST(refused({"--access-log=sometimes"}));
  BOOST_TEST(refused({}, {{"TOKEND_ACCESS_LOG", "sometimes"}}));
}

BOOST_AUTO_TEST_CASE(usage_mentions_the_new_flags) {
  const std::string usage = server::usage_text();
  for (const char* word : {"--log-level", "TOKEND_LOG_LEVEL", "--access-log", "--no-access-log",
                           "TOKEND_ACCESS_LOG", "X-Request-Id"}) {
    BOOST_TEST(usage.find(word) != std::string::npos, word);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(levels)

BOOST_AUTO_TEST_CASE(parse_and_name) {
  BOOST_TEST((logging::parse_level("debug") == logging::level::debug));
  BOOST_TEST((logging::parse_level("warning") == logging::level::warn));
  BOOST_TEST(!logging::parse_level("Info").has_value());
  BOOST_TEST(!logging::parse_level("").has_value());
  for (auto l : {logging::level::debug, logging::level::info, logging::level::warn, logging::level::error}) {
    BOOST_TEST((logging::parse_level(logging::level_name(l)) == l));
  }
}

BOOST_AUTO_TEST_CASE(lines_below_the_level_are_dropped) {
  level_guard guard;
  const auto emit_all = [] {
    logging::debug("d");
    logging::info("i", {{"n", 1}});
    logging::warn("w");
    logging::error("e");
  };
  const std::map<logging::level, std::vector<std::string>> expected = {
      {logging::level::debug, {"d", "i", "w", "e"}},
      {logging::level::info, {"i", "w", "e"}},
      {logging::level::warn, {"w", "e"}},
      {logging::level::error, {"e"}},
  };
  for (const auto& [lvl, messages] : expected) {
    BOOST_TEST_CONTEXT("level " << logging::level_name(lvl)) {
      logging::set_level(lvl);
      const auto lines = lines_of(capture_stdout(emit_all));
      std::vector<std::string> got;
      for (const auto& l : lines) {
        got.emplace_back(l.at("msg").as_string());
        BOOST_TEST(is_rfc3339_utc_millis(l.at("time").as_string()));
        BOOST_TEST(logging::parse_level(std::string(l.at("level").as_string())).has_value());
      }
      BOOST_TEST(got == messages, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(line_times_are_rfc3339_utc_with_milliseconds) {
  using std::chrono::milliseconds;
  using tp = std::chrono::system_clock::time_point;
  BOOST_TEST(logging::rfc3339_utc(tp{}) == "1970-01-01T00:00:00.000Z");
  BOOST_TEST(logging::rfc3339_utc(tp{milliseconds(1'796'123'606'742)}) == "2026-12-01T11:13:26.742Z");
  BOOST_TEST(logging::rfc3339_utc(tp{milliseconds(951'782'400'005)}) == "2000-02-29T00:00:00.005Z");
  BOOST_TEST(logging::rfc3339_utc(tp{milliseconds(-1)}) == "1969-12-31T23:59:59.999Z");
  // A line written now carries now, to the second at worst.
  const auto before = std::chrono::system_clock::now();
  const auto lines = lines_of(capture_stdout([] { logging::error("now"); }));
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  const std::string written(lines[0].at("time").as_string());
  BOOST_TEST(written >= logging::rfc3339_utc(before - std::chrono::seconds(1)));
  BOOST_TEST(written <= logging::rfc3339_utc(std::chrono::system_clock::now() + std::chrono::seconds(1)));
}

BOOST_AUTO_TEST_CASE(the_access_log_ignores_the_level) {
  level_guard guard;
  logging::set_level(logging::level::error);
  const auto lines = lines_of(capture_stdout([] { logging::access({{"status", 200}}); }));
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  BOOST_TEST(lines[0].at("msg").as_string() == "access");
  BOOST_TEST(lines[0].at("level").as_string() == "info");
  BOOST_TEST(lines[0].at("status").as_int64() == 200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(request_ids)

BOOST_AUTO_TEST_CASE(sane_ids_are_kept) {
  const std::vector<std::string> ids{"a", "abc-123", "req_1.2-3", "0123456789ABCDEFabcdef",
                                     std::string(128, 'x')};
  for (const auto& id : ids) {
    BOOST_TEST(server::is_sane_request_id(id), id);
    BOOST_TEST(server::request_id_for(id) == id);
  }
}

BOOST_AUTO_TEST_CASE(insane_ids_are_replaced) {
  const std::string key = tokend::core::generate_key();
  const std::vector<std::string> ids{
      std::string(), std::string(129, 'x'),  "has space", "semi;colon", "new\nline", "quote\"", "sl/ash",
      "ünïcode",     std::string("a\0b", 3), key};
  for (const auto& id : ids) {
    BOOST_TEST_CONTEXT("id of length " << id.size()) {
      BOOST_TEST(!server::is_sane_request_id(id));
      const auto replaced = server::request_id_for(id);
      BOOST_TEST(replaced != id);
      BOOST_TEST(replaced.size() == 32u);
      BOOST_TEST(replaced.find_first_not_of("0123456789abcdef") == std::string::npos, replaced);
    }
  }
}

// Not only the exact key: any shape of one (or of 32 of its digits) is replaced.
BOOST_AUTO_TEST_CASE(ids_holding_key_material_are_replaced) {
  const std::string key = tokend::core::generate_key();
  for (const auto& [name, shape] : tokend::test::key_shapes(key)) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(server::contains_key_material(shape));
      BOOST_TEST(!server::is_sane_request_id(shape));
      BOOST_TEST(server::request_id_for(shape) != shape);
    }
  }
  // What is not key material stays: short hex runs, runs broken by a letter past 'f', uuids of
  // fewer than 32 digits.
  for (const std::string id :
       {"0123456789abcdef0123456789abcde", "0123456789abcdef-0123456789abcde",
        "0123456789abcdefg0123456789abcdef", "req-2024.05.01-12.00", "trace_deadbeef_1"}) {
    BOOST_TEST_CONTEXT(id) {
      BOOST_TEST(!server::contains_key_material(id));
      BOOST_TEST(server::request_id_for(id) == id);
    }
  }
}

// Our own ids are 32 hex digits: generated ids are echoed and logged as they are, while the same
// shape coming from a client is replaced like any other key material.
BOOST_AUTO_TEST_CASE(generated_ids_are_ours_to_echo) {
  const std::string generated = server::request_id_for("");
  BOOST_TEST(generated.size() == 32u);
  const auto fields = server::access_fields({"GET", "/x", 200, 1us, generated, 0, 0});
  BOOST_TEST(fields.at("request_id").as_string() == generated);
  BOOST_TEST(server::request_id_for(generated) != generated);
}

BOOST_AUTO_TEST_CASE(new_ids_are_hex_and_distinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = server::new_request_id();
    BOOST_TEST(id.size() == 32u);
    BOOST_TEST(id.find_first_not_of("0123456789abcdef") == std::string::npos, id);
    BOOST_TEST(!tokend::core::is_well_formed_key(id));
    seen.insert(id);
  }
  BOOST_TEST(seen.size() == 1000u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(access_lines)

BOOST_AUTO_TEST_CASE(the_query_string_never_reaches_the_path) {
  const std::string key = tokend::core::generate_key();
  BOOST_TEST(server::loggable_path("/api/v2/tokens?token=" + key) == "/api/v2/tokens");
  BOOST_TEST(server::loggable_path("/api/v2/tokens?page=1&token=" + key + "#frag") == "/api/v2/tokens");
  BOOST_TEST(server::loggable_path("/api/v2/tokens#" + key) == "/api/v2/tokens");
  BOOST_TEST(server::loggable_path("/healthz") == "/healthz");
  BOOST_TEST(server::loggable_path("") == "");
}

BOOST_AUTO_TEST_CASE(key_like_runs_in_the_path_are_redacted) {
  const std::string key = tokend::core::generate_key();
  BOOST_TEST(server::loggable_path("/api/v2/tokens/" + key) == "/api/v2/tokens/[redacted]");
  BOOST_TEST(server::loggable_path("/" + key + "/x") == "/[redacted]/x");
  BOOST_TEST(server::loggable_path("/" + key.substr(0, 32)) == "/[redacted]");
  BOOST_TEST(server::loggable_path("/deadbeef/cafe") == "/deadbeef/cafe");  // short hex is fine
  const std::string upper = "/ABCDEF0123456789ABCDEF0123456789ABCDEF";
  BOOST_TEST(server::loggable_path(upper) == "/[redacted]");
  BOOST_TEST(server::loggable_method(key) == "[redacted]");
  BOOST_TEST(server::loggable_method("GET") == "GET");
}

// Every shape of a key is redacted from the path, the method and free text; the segments around it
// are kept.
BOOST_AUTO_TEST_CASE(every_shape_of_a_key_is_redacted) {
  const std::string key = tokend::core::generate_key();
  for (const auto& [name, shape] : tokend::test::key_shapes(key)) {
    BOOST_TEST_CONTEXT(name) {
      const auto path = server::loggable_path("/api/v2/tokens/" + shape + "?token=x");
      BOOST_TEST(path.starts_with("/api/v2/tokens/[redacted]"), path);
      BOOST_TEST(!server::contains_key_material(path), path);
      const auto mid = server::loggable_path("/x/" + shape + "/y");
      BOOST_TEST(mid.starts_with("/x/[redacted]"), mid);
      BOOST_TEST(mid.ends_with("/y"), mid);
      BOOST_TEST(!server::contains_key_material(mid), mid);
      BOOST_TEST(server::loggable_method(shape) == "[redacted]");
      const auto text = server::loggable_text("cannot parse '" + shape + "' here");
      BOOST_TEST(!server::contains_key_material(text), text);
      BOOST_TEST(text.starts_with("cannot parse"), text);
    }
  }
  // A run split across segments hides each segment it touches.
  BOOST_TEST(server::loggable_path("/x/" + key.substr(0, 16) + "/" + key.substr(16, 16) + "/y") ==
             "/x/[redacted]/[redacted]/y");
  BOOST_TEST(server::loggable_path("/x/" + key.substr(0, 16) + "%2F" + key.substr(16, 16)) ==
             "/x/[redacted]");
  // Short hex beside a redacted segment cannot make a run with the marker.
  BOOST_TEST(server::loggable_path("/" + key + "x/" + key.substr(0, 30)) ==
             "/[redacted]/" + key.substr(0, 30));
  // Separators join a run across segments: the short piece after a key is part of it.
  BOOST_TEST(server::loggable_path("/" + key + "/" + key.substr(0, 30)) == "/[redacted]/[redacted]");
  BOOST_TEST(server::loggable_path("/v1/deadbeef/%41%42/cafe") == "/v1/deadbeef/%41%42/cafe");
}

BOOST_AUTO_TEST_CASE(long_paths_are_cut) {
  const std::string path = "/" + std::string(1000, 'z');
  BOOST_TEST(server::loggable_path(path).size() == server::max_logged_path_length);
  // A key after the cut is not half-logged: runs are measured before cutting.
  const std::string key = tokend::core::generate_key();
  const std::string tail = "/" + std::string(server::max_logged_path_length - 10, 'z') + key;
  const auto logged = server::loggable_path(tail);
  BOOST_TEST(logged.size() <= server::max_logged_path_length);
  BOOST_TEST(logged.find(key.substr(0, 8)) == std::string::npos, logged);
}

BOOST_AUTO_TEST_CASE(fields_of_an_access_line) {
  const std::string key = tokend::core::generate_key();
  const std::string target = "/api/v2/tokens?token=" + key + "&pageSize=5";
  const auto fields = server::access_fields({"GET", target, 200, 1500us, "req-1", 147, 12});
  BOOST_TEST(fields.at("method").as_string() == "GET");
  BOOST_TEST(fields.at("path").as_string() == "/api/v2/tokens");
  BOOST_TEST(fields.at("status").to_number<int>() == 200);
  BOOST_TEST(fields.at("duration_seconds").to_number<double>() == 0.0015, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(fields.at("request_id").as_string() == "req-1");
  BOOST_TEST(fields.at("bytes").to_number<int>() == 147);
  BOOST_TEST(fields.at("request_bytes").to_number<int>() == 12);
  const std::string text = json::serialize(fields);
  BOOST_TEST(text.find(key) == std::string::npos);
  BOOST_TEST(text.find("token=") == std::string::npos);
  BOOST_TEST(text.find("pageSize") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
