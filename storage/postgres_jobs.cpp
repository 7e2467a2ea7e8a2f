// Failing jobs, and taking batches from the PostgreSQL store's queue.
#include "storage/postgres_jobs.hpp"

#include <type_traits>

namespace tokend::storage::pg {

void fail(job& j, core::errc e) {
  std::visit(
      [e](auto& typed) {
        if (!typed.handler) return;  // answered already
        const boost::system::error_code ec = core::make_error_code(e);
        if constexpr (std::is_same_v<std::decay_t<decltype(typed)>, empty_job>) {
          answer(typed.handler, boost::system::result<bool>(boost::system::in_place_error, ec));
        } else {
          answer(typed.handler, ec);
        }
      },
      j);
}

std::vector<job> job_queue::take(std::size_t max_batch) {
  std::vector<job> batch;
  auto first = jobs_.begin();
  while (first != jobs_.end() && std::holds_alternative<create_job>(*first) && create_in_flight_) ++first;
  if (first == jobs_.end()) return batch;
  const std::size_t kind = first->index();
  const bool batches =
      std::holds_alternative<create_job>(*first) || std::holds_alternative<lookup_job>(*first);
  for (auto it = first; it != jobs_.end() && batch.size() < max_batch;) {
    if (it->index() == kind) {
      batch.push_back(std::move(*it));
      it = jobs_.erase(it);
      if (!batches) break;
    } else {
      ++it;
    }
  }
  if (std::holds_alternative<create_job>(batch.front())) create_in_flight_ = true;
  return batch;
}

void job_queue::fail_all(core::errc e) {
  std::deque<job> failed;
  failed.swap(jobs_);
  for (auto& j : failed) fail(j, e);
}

}  // namespace tokend::storage::pg
