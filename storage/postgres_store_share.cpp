// The PostgreSQL store's sharing of rate-limit counts with the other processes (the outbox of
// postgres_admits), on the storage thread.
#include "storage/postgres_store_impl.hpp"

#include "core/error.hpp"

#include <boost/asio/post.hpp>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

}  // namespace

// Sent from the storage thread (share()), which builds the payloads.
void postgres_store::async_share_admits(std::vector<admitted_requests> counts, write_handler handler) {
  const bool open = lifecycle_.while_open([&] {
    net::post(ioc_, [this, counts = std::move(counts), handler = std::move(handler)]() mutable {
      share(counts, std::move(handler));
    });
  });
  if (!open) handler(error(core::errc::unavailable));
}

// Counts that waited (the previous call had more than it could send) go out first; the answer
// also says whether this process hears the others' counts, even when there was nothing to send.
void postgres_store::share(const std::vector<admitted_requests>& counts, write_handler handler) {
  std::vector<std::string> payloads = outbox_.take(counts);
  if (outbox_.dropped() > dropped_reported_) {
    log(false, "PostgreSQL store: rate-limit counts of " +
                   std::to_string(outbox_.dropped() - dropped_reported_) +
                   " keys were not shared: more keys than the sharing interval can carry");
    dropped_reported_ = outbox_.dropped();
  }
  if (payloads.empty()) {
    try {
      handler(hearing());
    } catch (...) {  // NOLINT(bugprone-empty-catch): as any handler's: the storage thread goes on
    }
    return;
  }
  submit(pg::share_admits_job{std::move(payloads), [this, handler = std::move(handler)](error_code e) {
                                handler(e ? e : hearing());
                              }});
}

error_code postgres_store::hearing() const noexcept {
  return listening_.load(std::memory_order_acquire) ? error_code{} : error(core::errc::unavailable);
}

}  // namespace tokend::storage
