// Duplicate member names in a JSON text. Boost.JSON keeps the last of two equal names, where another
// reader (a checking proxy, a client library) may keep the first: a body that names a member twice
// means different things to different readers, so the API refuses it.
#pragma once

#include <string_view>

namespace tokend::server {

// True when some object anywhere in the JSON text `json` has two members of the same name
// (compared after unescaping: "a" and "\u0061" are the same name). False for valid JSON without
// one; an invalid text is reported as having none (validity is the caller's check).
[[nodiscard]] bool has_duplicate_members(std::string_view json);

}  // namespace tokend::server
