// Bootstrap of the first key; see bootstrap.hpp.
#include "server/bootstrap.hpp"

#include "core/error.hpp"
#include "server/data_dir.hpp"
#include "server/log.hpp"

#include <charconv>
#include <chrono>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tokend::server {
namespace {

constexpr auto startup_deadline = std::chrono::seconds(30);

// Start-up may block: no listener runs yet. A deadline keeps a wedged store from hanging forever.
template <class Value, class Start>
Value wait_for_store(Start start) {
  auto promise = std::make_shared<std::promise<Value>>();
  auto future = promise->get_future();
  start([promise](Value v) { promise->set_value(std::move(v)); });
  if (future.wait_for(startup_deadline) != std::future_status::ready) {
    throw std::runtime_error("store did not answer within 30s during start-up");
  }
  return future.get();
}

void store_key(storage::token_store& store, const std::string& key, core::user_id owner,
               std::string_view type = core::admin_type) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  auto record = core::make_token_record(key, owner, "bootstrap", std::string(type),
                                        std::chrono::duration_cast<std::chrono::seconds>(now).count());
  const auto id =
      wait_for_store<boost::system::result<std::uint64_t>>([&](storage::token_store::create_handler done) {
        store.async_create(std::move(record), std::move(done));
      });
  if (!id) throw std::runtime_error("cannot store the bootstrap key: " + id.error().message());
}

// TOKEND_BOOTSTRAP_TYPE: the type of TOKEND_BOOTSTRAP_TOKEN's key, admin unless set.
std::string_view bootstrap_type(const env_lookup& env) {
  const auto type = env("TOKEND_BOOTSTRAP_TYPE");
  if (!type || type->empty() || *type == core::admin_type) return core::admin_type;
  if (*type == core::operator_type) return core::operator_type;
  throw config_error("TOKEND_BOOTSTRAP_TYPE must be admin or operator");
}

}  // namespace

void bootstrap(storage::token_store& store, const config& cfg, const env_lookup& env) {
  // Checked even without a bootstrap key: a mistyped deployment should hear of it.
  const std::string_view type = bootstrap_type(env);
  if (const auto key = env("TOKEND_BOOTSTRAP_TOKEN"); key && !key->empty()) {
    if (!core::is_well_formed_key(*key)) {
      throw config_error(
          "TOKEND_BOOTSTRAP_TOKEN is not a well-formed key (64 lowercase hex characters with a valid "
          "checksum; make one with `tokend keygen`)");
    }
    core::user_id owner = 1;
    if (const auto id = env("TOKEND_BOOTSTRAP_USER_ID"); id && !id->empty()) {
      const auto [ptr, ec] = std::from_chars(id->data(), id->data() + id->size(), owner);
      if (ec != std::errc{} || ptr != id->data() + id->size() || owner == 0 || owner > (1ULL << 53)) {
        throw config_error("TOKEND_BOOTSTRAP_USER_ID must be a positive integer (at most 2^53)");
      }
    }
    const auto digest = core::digest_key(*key);
    const auto existing = wait_for_store<boost::system::result<std::optional<storage::key_info>>>(
        [&](storage::token_store::lookup_handler done) { store.async_lookup(digest, std::move(done)); });
    if (!existing) throw std::runtime_error("cannot read the store: " + existing.error().message());
    if (const std::optional<storage::key_info>& present = *existing) {
      log::info("bootstrap key already present", {{"userId", present->owner}});
      return;
    }
    store_key(store, *key, owner, type);
    log::info("bootstrap key stored", {{"userId", owner}, {"type", type}});
    return;
  }
  const auto empty = store.empty();
  if (!empty) throw std::runtime_error("cannot read the store: " + empty.error().message());
  if (!*empty) return;
  const auto path = std::filesystem::path(cfg.data_dir) / "admin-token";
  const std::string key = core::generate_key();
  // Written and synced before the key is stored: a crash in between leaves an empty store, so the
  // next start simply makes a new key and replaces this file.
  prepare_data_dir(cfg.data_dir);
  write_private_file(path, key + "\n");
  store_key(store, key, 1);
  log::info("empty store: created an admin key for user 1", {{"path", path.string()}, {"userId", 1}});
}

}  // namespace tokend::server
