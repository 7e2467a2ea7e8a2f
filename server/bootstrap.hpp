// The first key of a deployment: from TOKEND_BOOTSTRAP_TOKEN, or generated into
// <data-dir>/admin-token when the store is empty. Runs once at start-up, before any listener.
#pragma once

#include "server/config.hpp"
#include "storage/token_store.hpp"

namespace tokend::server {

// Throws config_error for a malformed bootstrap key or user id, std::runtime_error when the store
// or the admin-token file cannot be written. Never logs a key.
void bootstrap(storage::token_store& store, const config& cfg, const env_lookup& env);

}  // namespace tokend::server
