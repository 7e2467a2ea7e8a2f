// Micro-benchmarks of the per-request work around the handlers: Beast parsing a request from raw
// bytes (a typical GET list and POST create), the create body's JSON rules, the caller's key from
// the target, the JSON response bodies, and serializing a response (Beast's serializer against
// server/response_head, which the session uses).
#include "core/key.hpp"
#include "core/token.hpp"
#include "server/api_parsing.hpp"
#include "server/api_response.hpp"
#include "server/response_head.hpp"
#include "server/token_service.hpp"
#include "storage/token_store.hpp"

#include <benchmark/benchmark.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>

#include <string>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace core = tokend::core;
namespace server = tokend::server;
namespace storage = tokend::storage;

namespace {

const std::string& sample_key() {
  static const std::string key = core::generate_key();
  return key;
}

std::string get_request_bytes() {
  return "GET /api/v2/tokens?token=" + sample_key() +
         " HTTP/1.1\r\n"
         "Host: 127.0.0.1:8080\r\n"
         "User-Agent: curl/7.88.1\r\n"
         "Accept: */*\r\n"
         "\r\n";
}

constexpr std::string_view create_json = R"({"type":"admin","description":"Main app"})";

std::string post_request_bytes() {
  return "POST /api/v2/tokens?token=" + sample_key() +
         " HTTP/1.1\r\n"
         "Host: 127.0.0.1:8080\r\n"
         "User-Agent: curl/7.88.1\r\n"
         "Accept: */*\r\n"
         "Content-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(create_json.size()) + "\r\n\r\n" + std::string(create_json);
}

// Parses one whole request held in `raw`, as the session's parser would from its read buffer.
void parse_request(benchmark::State& state, const std::string& raw) {
  for (auto _ : state) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(8192);
    parser.body_limit(16384);
    parser.eager(true);
    beast::error_code ec;
    const auto used = parser.put(net::buffer(raw), ec);
    if (ec || !parser.is_done() || used != raw.size()) {
      state.SkipWithError("the request did not parse in one go");
      break;
    }
    auto request = parser.release();
    benchmark::DoNotOptimize(request);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(raw.size()));
}

void BM_parse_get_request(benchmark::State& state) { parse_request(state, get_request_bytes()); }
BENCHMARK(BM_parse_get_request);

void BM_parse_post_request(benchmark::State& state) { parse_request(state, post_request_bytes()); }
BENCHMARK(BM_parse_post_request);

void BM_parse_create_body(benchmark::State& state) {
  for (auto _ : state) {
    auto body = server::parse_create_body(create_json);
    if (!body) {
      state.SkipWithError("the create body was refused");
      break;
    }
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_parse_create_body);

// What the router does with the target of every API request: parse it, then find the key.
void BM_caller_key(benchmark::State& state) {
  const std::string target = "/api/v2/tokens?token=" + sample_key() + "&page=0&pageSize=50";
  for (auto _ : state) {
    const auto parts = server::parse_request_target(target);
    if (!parts) {
      state.SkipWithError("the target did not parse");
      break;
    }
    auto key = server::caller_key(*parts, {});
    if (!key || *key != sample_key()) {
      state.SkipWithError("the key was not found in the target");
      break;
    }
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_caller_key);

// The same target through Boost.URL's origin-form parser alone, which the router used before
// parse_request_target: the reference for BM_caller_key's parsing share.
void BM_target_boost_url(benchmark::State& state) {
  const std::string target = "/api/v2/tokens?token=" + sample_key() + "&page=0&pageSize=50";
  for (auto _ : state) {
    auto url = boost::urls::parse_origin_form(target);
    benchmark::DoNotOptimize(url);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_target_boost_url);

void BM_created_body(benchmark::State& state) {
  const server::token_service::created token{
      sample_key(), core::make_token_record(sample_key(), 1, "Main app", "admin", 1795837738)};
  for (auto _ : state) {
    std::string body = server::created_body(token);
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_created_body);

storage::list_page ten_tokens() {
  storage::list_page page;
  for (int i = 0; i < 10; ++i) {
    const std::string key = core::generate_key();
    page.tokens.push_back(
        core::make_token_record(key, 1, "token " + std::to_string(i), "admin", 1795837738 + i));
  }
  return page;
}

void BM_list_body_10(benchmark::State& state) {
  const auto page = ten_tokens();
  const server::page_request paging;
  for (auto _ : state) {
    std::string body = server::list_body(page, paging);
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_list_body_10);

void BM_error_body(benchmark::State& state) {
  for (auto _ : state) {
    std::string body = server::error_body("Invalid or missing token");
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_error_body);

// A response as the session built it with Beast's message (status, Content-Type, request id, body,
// keep-alive, Content-Length).
http::response<http::string_body> sample_response(const std::string& body) {
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.set("X-Request-Id", "0123456789abcdef0123456789abcdef");
  res.body() = body;
  res.keep_alive(true);
  res.prepare_payload();
  return res;
}

// Beast's serializer into a flat buffer reused across requests like a write buffer: what the
// session did before server/response_head, kept as the baseline.
void serialize_with_beast(benchmark::State& state, const std::string& body) {
  beast::flat_buffer out;
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto res = sample_response(body);
    out.clear();
    http::serializer<false, http::string_body> sr{res};
    beast::error_code ec;
    do {
      sr.next(ec, [&](beast::error_code&, const auto& buffers) {
        const auto n = net::buffer_copy(out.prepare(beast::buffer_bytes(buffers)), buffers);
        out.commit(n);
        sr.consume(n);
      });
    } while (!ec && !sr.is_done());
    if (ec) {
      state.SkipWithError("serialization failed");
      break;
    }
    bytes = out.size();
    benchmark::DoNotOptimize(out.data().data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["response_bytes"] = static_cast<double>(bytes);
}

// What the session does now: the head into a reused string; the body goes out as a second buffer.
void serialize_with_response_head(benchmark::State& state, const std::string& body) {
  std::string head;
  for (auto _ : state) {
    server::http_response res{200, body};
    res.insert(http::field::content_type, "application/json");
    res.insert("X-Request-Id", "0123456789abcdef0123456789abcdef");
    server::write_response_head(res, {11, true, res.body().size()}, head);
    benchmark::DoNotOptimize(head.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_serialize_error_response_beast(benchmark::State& state) {
  serialize_with_beast(state, server::error_body("Invalid or missing token"));
}
BENCHMARK(BM_serialize_error_response_beast);

void BM_serialize_error_response_head(benchmark::State& state) {
  serialize_with_response_head(state, server::error_body("Invalid or missing token"));
}
BENCHMARK(BM_serialize_error_response_head);

void BM_serialize_list_response_10_beast(benchmark::State& state) {
  serialize_with_beast(state, server::list_body(ten_tokens(), server::page_request{}));
}
BENCHMARK(BM_serialize_list_response_10_beast);

void BM_serialize_list_response_10_head(benchmark::State& state) {
  serialize_with_response_head(state, server::list_body(ten_tokens(), server::page_request{}));
}
BENCHMARK(BM_serialize_list_response_10_head);

}  // namespace
