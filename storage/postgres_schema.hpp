// The PostgreSQL schema script (storage/postgres_schema.sql), embedded at build time so that the
// binary and the schema it expects can never be deployed apart.
#pragma once

#include <string_view>

namespace tokend::storage {

[[nodiscard]] std::string_view postgres_schema_sql() noexcept;

}  // namespace tokend::storage
