// The first key of a deployment: from TOKEND_BOOTSTRAP_TOKEN, or generated into
// <data-dir>/admin-token when the store is empty. Runs once at start-up, before any listener.
#pragma once

#include "server/config.hpp"
#include "storage/token_store.hpp"

namespace tokend::server {

// TOKEND_BOOTSTRAP_TYPE (admin, the default, or operator) is the type of TOKEND_BOOTSTRAP_TOKEN's
// key; the generated admin-token key is always an admin key.
// Throws config_error for a malformed bootstrap key, user id or type, std::runtime_error when the store
// or the admin-token file cannot be written. Never logs a key.
void bootstrap(storage::token_store& store, const config& cfg, const env_lookup& env);

}  // namespace tokend::server
