// The shape of a token object in list answers, as docs/API.md documents it: exactly its nine
// fields, each of its type. Tests that read lists after crashes and faults check every record with it.
#pragma once

#include <boost/json.hpp>

namespace tokend::test {

[[nodiscard]] inline bool is_listed_token(const boost::json::object& o) {
  const auto has = [&o](const char* name, auto is) { return o.contains(name) && is(o.at(name)); };
  const auto string = [](const boost::json::value& v) { return v.is_string(); };
  const auto number = [](const boost::json::value& v) { return v.is_number(); };
  const auto string_or_null = [](const boost::json::value& v) { return v.is_string() || v.is_null(); };
  const auto object_or_null = [](const boost::json::value& v) { return v.is_object() || v.is_null(); };
  return o.size() == 9 && has("token", string) && has("description", string) && has("type", string) &&
         has("timestamp", string) && has("userId", number) && has("id", number) &&
         has("expiresAt", string_or_null) && has("lastUsedAt", string_or_null) &&
         has("rateLimit", object_or_null);
}

}  // namespace tokend::test
