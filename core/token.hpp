// What the service knows about a token. The plain key is never part of a record: only its digest
// and the six-character display prefix are.
#pragma once

#include "core/key.hpp"
#include "core/rate_limit.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tokend::core {

using user_id = std::uint64_t;

// An admin key manages its own user's tokens; an operator key manages any user's.
inline constexpr std::string_view admin_type = "admin";
inline constexpr std::string_view operator_type = "operator";

struct token_record {
  key_digest digest{};
  std::string display_prefix;  // first six characters of the key
  std::string description;
  std::string type;             // admin_type or operator_type
  std::int64_t created_at = 0;  // Unix seconds
  user_id owner = 0;
  std::int64_t expires_at = 0;    // Unix seconds from which the key is refused; 0: never
  std::int64_t last_used_at = 0;  // Unix seconds of a whole minute; 0: no use recorded
  std::uint64_t id = 0;           // set by the store: unique in it, increasing in creation order
  std::optional<core::rate_limit> rate_limit{};  // the key's own; nullopt: the server's default applies
};

// Whether a key with this expiry is refused at `now` (Unix seconds).
[[nodiscard]] constexpr bool expired(std::int64_t expires_at, std::int64_t now) noexcept {
  return expires_at != 0 && now >= expires_at;
}

// The record of `key`: its digest and display prefix, never the key itself.
[[nodiscard]] inline token_record make_token_record(std::string_view key, user_id owner,
                                                    std::string description, std::string type,
                                                    std::int64_t created_at, std::int64_t expires_at = 0,
                                                    std::optional<rate_limit> limit = std::nullopt) {
  return token_record{digest_key(key),
                      std::string(key.substr(0, display_prefix_length)),
                      std::move(description),
                      std::move(type),
                      created_at,
                      owner,
                      expires_at,
                      0,
                      0,
                      limit};
}

}  // namespace tokend::core
