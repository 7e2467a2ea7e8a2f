// The service's error vocabulary. Storage and logic report these codes; server/ maps each to one
// HTTP status in a single function.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace tokend::core {

enum class errc {
  unauthorized = 1,  // missing, malformed, unknown or deleted key
  not_found,         // no such token for this user
  bad_request,       // body or parameters invalid
  overloaded,        // write queue full: try again later
  unavailable,       // store failing or closed
  internal,          // a bug or an unexpected store error
  quota_exceeded,    // the owner already holds as many tokens as it may
};

[[nodiscard]] const boost::system::error_category& error_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace tokend::core

template <>
struct boost::system::is_error_code_enum<tokend::core::errc> : std::true_type {};
