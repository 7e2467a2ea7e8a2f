// The stores the previous record format left (tests/fixtures, see its README): the keys they hold,
// and loading the PostgreSQL one into a schema of its own.
#pragma once

#include "support/postgres.hpp"

#include <libpq-fe.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#ifndef TOKEND_SOURCE_DIR
#error "TOKEND_SOURCE_DIR must name the source tree, where tests/fixtures is"
#endif

namespace tokend::test {

inline const std::filesystem::path v1_fixtures =
    std::filesystem::path(TOKEND_SOURCE_DIR) / "tests" / "fixtures";

struct v1_key {
  std::string key;
  std::string description;
};

// The keys of one fixture ("rocksdb-v1" or "postgres-v1"), in creation order.
[[nodiscard]] inline std::vector<v1_key> v1_keys(const char* store_name) {
  std::ifstream in(v1_fixtures / "v1-keys.json");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const boost::json::value parsed = boost::json::parse(text);
  std::vector<v1_key> out;
  for (const auto& k : parsed.at(store_name).as_array()) {
    out.push_back({std::string(k.at("key").as_string()), std::string(k.at("description").as_string())});
  }
  return out;
}

// A fresh schema on the test server holding the PostgreSQL fixture, as that version left it; its
// name, or "" with the reason in `error` when loading failed.
[[nodiscard]] inline std::string load_postgres_v1(std::string& error) {
  const std::string schema = fresh_postgres_schema();
  std::ifstream in(v1_fixtures / "postgres-v1.sql");
  const std::string sql{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  PGconn* conn = PQconnectdb(postgres_url().c_str());
  const std::string setup = "CREATE SCHEMA " + schema + "; SET search_path TO " + schema + ";\n" + sql;
  PGresult* r = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, setup.c_str()) : nullptr;
  const bool ok = r && (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK);
  if (!ok) error = PQerrorMessage(conn);
  PQclear(r);
  PQfinish(conn);
  return ok ? schema : std::string{};
}

}  // namespace tokend::test
