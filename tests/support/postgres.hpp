// The PostgreSQL server for tests that need one. scripts/test starts a throwaway server
// (scripts/test-postgres) and exports TOKEND_TEST_POSTGRES_URL; without it these tests FAIL with
// the reason rather than skip, so a run that was meant to cover the PostgreSQL store cannot pass
// without doing so. Each test gets its own schema, so tests never see each other's tokens.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace tokend::test {

inline constexpr const char* postgres_missing =
    "TOKEND_TEST_POSTGRES_URL is not set: run ./scripts/test, which starts a throwaway PostgreSQL "
    "server, or start one with `scripts/test-postgres start DIR` and export the URL it prints";

// The server's libpq URL; throws (failing the test) when there is none.
[[nodiscard]] inline std::string postgres_url() {
  const char* url = std::getenv("TOKEND_TEST_POSTGRES_URL");
  if (url == nullptr || *url == '\0') throw std::runtime_error(postgres_missing);
  return url;
}

// A schema name no other test (or test process) uses.
[[nodiscard]] inline std::string fresh_postgres_schema() {
  static std::mt19937_64 random{std::random_device{}()};
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(random() % 1'000'000'000'000ULL);
}

}  // namespace tokend::test
