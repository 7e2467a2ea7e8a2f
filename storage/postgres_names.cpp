// The schema name rule and the names derived from the schema.
#include "storage/postgres_names.hpp"

#include "storage/pg_text.hpp"
#include "storage/postgres_store.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace tokend::storage {
namespace {

constexpr std::string_view channel_suffix = ".tokend_revoked";
constexpr std::string_view rate_channel_suffix = ".tokend_admits";
// The schema rule below is made for the longer revocation channel; the rate channel then fits too.
static_assert(rate_channel_suffix.size() <= channel_suffix.size());
// PostgreSQL's identifier limit, which pg_notify applies to the channel.
constexpr std::size_t longest_identifier = 63;

}  // namespace

std::string postgres_schema_problem(std::string_view name) {
  // The NOTIFY channel is the name plus channel_suffix; a longer one is refused by pg_notify.
  constexpr std::size_t longest = longest_identifier - channel_suffix.size();
  if (name.empty()) return "empty";
  if (name.size() > longest) return "longer than " + std::to_string(longest) + " bytes";
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return "not printable ASCII";
  }
  if (name.starts_with("pg_")) return "names starting with pg_ are reserved by PostgreSQL";
  return {};
}

postgres_names::postgres_names(std::string schema) : schema_(std::move(schema)) {
  if (const std::string problem = postgres_schema_problem(schema_); !problem.empty()) {
    throw std::runtime_error("invalid PostgreSQL schema name: " + problem);
  }
  channel_ = schema_ + std::string(channel_suffix);
  rate_channel_ = schema_ + std::string(rate_channel_suffix);
}

std::string postgres_names::quoted_schema() const { return pg::quote_identifier(schema_); }

std::string postgres_names::table(const char* name) const { return quoted_schema() + "." + name; }

}  // namespace tokend::storage
