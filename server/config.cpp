// Flag and environment parsing for `tokend serve`, by the flag table (config_flags.hpp).
#include "server/config.hpp"

#include "server/config_flags.hpp"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace tokend::server {

config::config() {
  for (const auto& flag : flag_table()) {
    if (!flag.default_value.empty())
      flag.apply(*this, std::string(flag.name), std::string(flag.default_value));
  }
}

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
}

config parse_config(const std::vector<std::string>& args, const env_lookup& env) {
  config c;
  for (const auto& spec : flag_table()) {
    if (auto v = env(std::string(spec.env))) spec.apply(c, std::string(spec.env), *v);
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const auto eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const flag_spec* spec = nullptr;
    bool negated = false;
    for (const auto& s : flag_table()) {
      if (name == s.name) spec = &s;
      if (eq == std::string::npos && !s.negation.empty() && name == s.negation) {
        spec = &s;
        negated = true;
      }
    }
    if (negated) {
      spec->apply(c, name, "false");
      continue;
    }
    if (!spec) throw config_error("unknown flag: " + name + " (see tokend --help)");
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (spec->is_switch()) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw config_error("missing value for " + name);
    }
    spec->apply(c, name, value);
  }
  if (c.store == store_kind::postgres && c.postgres_url.empty()) {
    throw config_error("--store postgres needs --postgres-url (or TOKEND_POSTGRES_URL)");
  }
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.token_max_ttl.count() != 0 && c.token_ttl > c.token_max_ttl) {
    throw config_error("--token-ttl (" + std::to_string(c.token_ttl.count()) +
                       "s) must not exceed --token-max-ttl (" + std::to_string(c.token_max_ttl.count()) +
                       "s)");
  }
  if (c.drain_idle_grace && *c.drain_idle_grace >= c.drain_timeout) {
    throw config_error("--drain-idle-grace (" + std::to_string(c.drain_idle_grace->count()) +
                       "ms) must be shorter than --drain-timeout (" +
                       std::to_string(c.drain_timeout.count()) + "ms)");
  }
  return c;
}

std::chrono::milliseconds drain_idle_grace(const config& c) noexcept {
  if (c.drain_idle_grace) return std::min(*c.drain_idle_grace, c.drain_timeout);
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(2), c.drain_timeout / 2);
}

}  // namespace tokend::server
