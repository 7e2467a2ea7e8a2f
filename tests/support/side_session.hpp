// A plain libpq session beside a store under test, for what the store never does itself: writing
// as an older binary would, holding locks, reading plans and rows behind the store's back.
#pragma once

#include <libpq-fe.h>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace tokend::test {

class side_session {
 public:
  explicit side_session(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    BOOST_REQUIRE_MESSAGE(PQstatus(conn_) == CONNECTION_OK, PQerrorMessage(conn_));
    const auto ignore_notice = [](void*, const char*) {};
    PQsetNoticeProcessor(conn_, ignore_notice, nullptr);  // "drop cascades to ..."
  }
  ~side_session() { PQfinish(conn_); }
  side_session(const side_session&) = delete;
  side_session& operator=(const side_session&) = delete;

  // The first cell of the last result ("" when there is none); a failure fails the test.
  std::string exec(const std::string& sql) {
    const auto rows = column(sql);
    return rows.empty() ? std::string{} : rows.front();
  }

  // The first column of every row of the last result; a failure fails the test.
  std::vector<std::string> column(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const auto status = PQresultStatus(r);
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    std::vector<std::string> rows;
    for (int i = 0; ok && i < PQntuples(r); ++i) rows.emplace_back(PQgetvalue(r, i, 0));
    const std::string message = PQresultErrorMessage(r);
    PQclear(r);
    BOOST_REQUIRE_MESSAGE(ok, sql << ": " << message);
    return rows;
  }

  [[nodiscard]] PGconn* native() const noexcept { return conn_; }

 private:
  PGconn* conn_;
};

}  // namespace tokend::test
