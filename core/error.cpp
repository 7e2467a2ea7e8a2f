// The error category for tokend::core::errc.
#include "core/error.hpp"

#include "core/enum_table.hpp"

namespace tokend::core {

const boost::system::error_category& error_category() noexcept {
  static_assert(static_cast<int>(errc::quota_exceeded) == 7, "one message per code, in errc's order");
  static const message_category<7> instance(
      "tokend",
      {"Unauthorized Request", "Token not found", "Bad Request", "Service overloaded, try again later",
       "Service unavailable, try again later", "Internal server error", "Token limit reached"},
      "Unknown error");
  return instance;
}

}  // namespace tokend::core
