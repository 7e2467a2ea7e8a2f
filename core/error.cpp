// The error category for tokend::core::errc.
#include "core/error.hpp"

#include <string>

namespace tokend::core {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tokend"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unauthorized:
        return "Unauthorized Request";
      case errc::not_found:
        return "Token not found";
      case errc::bad_request:
        return "Bad Request";
      case errc::overloaded:
        return "Service overloaded, try again later";
      case errc::unavailable:
        return "Service unavailable, try again later";
      case errc::internal:
        return "Internal server error";
    }
    return "Unknown error";
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace tokend::core
