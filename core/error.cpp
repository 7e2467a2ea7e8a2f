// The error category for tokend::core::errc.
#include "core/error.hpp"

#include "core/enum_table.hpp"

namespace tokend::core {

const boost::system::error_category& error_category() noexcept {
  static_assert(static_cast<int>(errc::internal) == 6, "one message per code, in errc's order");
  static const message_category<6> instance(
      "tokend",
      {"Unauthorized Request", "Token not found", "Bad Request", "Service overloaded, try again later",
       "Service unavailable, try again later", "Internal server error"},
      "Unknown error");
  return instance;
}

}  // namespace tokend::core
