// server::parse_config over a fake environment, so a test controls every TOKEND_* variable.
#pragma once

#include "server/config.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tokend::test {

inline server::config configure(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env = {}) {
  return server::parse_config(args, [env](const std::string& name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

}  // namespace tokend::test
