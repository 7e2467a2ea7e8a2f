// A fault-injecting decorator for tests: a control file makes writes stall or fail at run time, so
// a running server can be driven through storage faults from outside the process.
#pragma once

#include "storage/token_store.hpp"

#include <memory>
#include <string>

namespace tokend::storage {

// Wraps `inner`. Before each write (create, remove, roll, limits, uses, sweep, a token bound) — on
// its own thread, never the caller's — reads the control file `control_path`:
//   missing/empty → pass through;
//   "stall" (whitespace trimmed) → wait (poll every 5 ms) until it changes; later writes queue up
//     behind the stalled one, so write order is kept;
//   "fail" → complete the write with core::errc::unavailable without touching inner.
// Any other content passes through. Reads (lookup, lists, quota) and the start-up settings (the
// default bound, the cursor secret) always pass straight through, so a stalled writer never delays
// them. ready() is inner's, and false while the file says "fail".
// close() stops stalling (queued writes then proceed as if the file were empty, except that "fail"
// still fails), then closes inner. Writes submitted once close() has begun are refused with
// core::errc::unavailable on the caller's thread, as the other stores refuse them after close().
[[nodiscard]] std::unique_ptr<token_store> make_faulty_store(std::unique_ptr<token_store> inner,
                                                             std::string control_path);

}  // namespace tokend::storage
