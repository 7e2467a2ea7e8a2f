// See http_response.hpp.
#include "server/http_response.hpp"

#include <boost/beast/core/string.hpp>

namespace tokend::server {

void http_response::insert(std::string_view name, std::string_view value) {
  constexpr std::string_view separator = ": ";
  constexpr std::string_view line_end = "\r\n";
  for (const std::string_view part : {name, separator, value, line_end})
    fields_.insert(fields_.end(), part.begin(), part.end());
}

template <class F>
void http_response::visit(F&& f) const noexcept {
  std::string_view rest = fields();
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 2);
    const auto colon = line.find(':');
    if (f(line.substr(0, colon), line.substr(colon + 2))) return;
  }
}

std::string_view http_response::operator[](std::string_view name) const noexcept {
  std::string_view found;
  visit([&](std::string_view n, std::string_view v) {
    if (!boost::beast::iequals(n, name)) return false;
    found = v;
    return true;
  });
  return found;
}

std::size_t http_response::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  visit([&](std::string_view field, std::string_view) {
    n += boost::beast::iequals(field, name) ? 1 : 0;
    return false;
  });
  return n;
}

}  // namespace tokend::server
