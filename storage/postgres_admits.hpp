// Rate-limit counts as the PostgreSQL store sends them to its other processes: NOTIFY payloads
// "<sender> <tag>:<count>,<tag>:<count>...", sender and tags 16 lowercase hex digits, counts
// decimal. Pure code, tested without a database; the store calls it on its storage thread.
#pragma once

#include "storage/token_store.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokend::storage::pg {

// pg_notify refuses a payload of 8000 bytes or more.
inline constexpr std::size_t admits_payload_bytes = 7900;
// One call's statement stays bounded (about half a megabyte).
inline constexpr std::size_t admits_payloads_per_call = 64;
// Keys whose counts wait for a later call, beyond which more are dropped: a process admitting on
// more keys than the calls can carry must not grow without bound.
inline constexpr std::size_t admits_waiting_keys = std::size_t{1} << 18;

// A store's id among the processes it shares counts with: random, so never configured twice.
[[nodiscard]] std::uint64_t random_sender_id();

struct peer_admits {
  std::uint64_t sender = 0;
  std::vector<admitted_requests> counts;
};

// The payload's sender and counts; nullopt unless it is exactly the format above, with at least
// one count, each count at most 2^32 - 1, and at most admits_payload_bytes long.
[[nodiscard]] std::optional<peer_admits> parse_admits(std::string_view payload);

// The counts a store has still to send, and their payloads.
class admits_outbox {
 public:
  explicit admits_outbox(std::uint64_t sender) noexcept : sender_(sender) {}

  // Adds `counts` to what earlier calls could not send (the same key's counts summed, at most
  // 2^32 - 1), and takes as many as admits_payloads_per_call payloads hold, earlier counts first.
  // What is left waits for the next call, up to admits_waiting_keys keys; the rest is dropped.
  [[nodiscard]] std::vector<std::string> take(const std::vector<admitted_requests>& counts);

  [[nodiscard]] std::size_t waiting() const noexcept { return waiting_.size(); }
  // Keys whose counts were dropped, ever.
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }

 private:
  std::uint64_t sender_;
  std::vector<admitted_requests> waiting_;
  std::uint64_t dropped_ = 0;
};

}  // namespace tokend::storage::pg
