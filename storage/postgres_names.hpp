// The names the PostgreSQL store puts into SQL, all derived from its schema name: with
// postgres_schema_problem, the one place that knows what a schema name may be.
#pragma once

#include <string>

namespace tokend::storage {

class postgres_names {
 public:
  // Throws std::runtime_error when postgres_schema_problem() refuses `schema`.
  explicit postgres_names(std::string schema);

  // The schema as given (unquoted) and as an SQL identifier.
  [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
  [[nodiscard]] std::string quoted_schema() const;
  // A table of the schema, quoted: the schema name may be a reserved word, or anything.
  [[nodiscard]] std::string table(const char* name) const;
  // The NOTIFY channel of revocations, "<schema>.tokend_revoked"; a NOTIFY payload names it
  // unquoted, LISTEN quoted.
  [[nodiscard]] const std::string& channel() const noexcept { return channel_; }
  // The NOTIFY channel of rate-limit counts shared between processes, "<schema>.tokend_admits":
  // per schema too, so stores of two schemas in one database never hear each other's counts.
  [[nodiscard]] const std::string& rate_channel() const noexcept { return rate_channel_; }

 private:
  std::string schema_;
  std::string channel_;
  std::string rate_channel_;
};

}  // namespace tokend::storage
