// Which malloc the process runs on, and how many bytes it has handed out. For /metrics (an
// operator sees which allocator a pod runs) and tokend-cache-memory (bytes per cached key).
#pragma once

#include <cstddef>
#include <string_view>

namespace tokend::core {

// "jemalloc" when jemalloc serves malloc (linked in, or preloaded by an operator), else "system".
[[nodiscard]] std::string_view allocator_name() noexcept;

// Bytes in live allocations by the allocator's own statistics: jemalloc's stats.allocated, or
// glibc's mallinfo2() (small chunks in use plus mmapped blocks). Excludes memory kept free.
[[nodiscard]] std::size_t allocated_bytes() noexcept;

}  // namespace tokend::core
