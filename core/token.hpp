// What the service knows about a token. The plain key is never part of a record: only its digest
// and the six-character display prefix are.
#pragma once

#include "core/key.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace tokend::core {

using user_id = std::uint64_t;

struct token_record {
  key_digest digest{};
  std::string display_prefix;  // first six characters of the key
  std::string description;
  std::string type;             // "admin" is the only type today
  std::int64_t created_at = 0;  // Unix seconds
  user_id owner = 0;
};

// The record of `key`: its digest and display prefix, never the key itself.
[[nodiscard]] inline token_record make_token_record(std::string_view key, user_id owner,
                                                    std::string description, std::string type,
                                                    std::int64_t created_at) {
  return token_record{digest_key(key),
                      std::string(key.substr(0, display_prefix_length)),
                      std::move(description),
                      std::move(type),
                      created_at,
                      owner};
}

}  // namespace tokend::core
