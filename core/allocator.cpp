// See allocator.hpp. jemalloc is found through its mallctl() entry point, declared weak so that
// this links without jemalloc and asks the allocator actually serving malloc at run time.
#include "core/allocator.hpp"

#include <malloc.h>

#include <cstdint>

extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen)
    __attribute__((weak));

namespace tokend::core {

std::string_view allocator_name() noexcept { return mallctl != nullptr ? "jemalloc" : "system"; }

std::size_t allocated_bytes() noexcept {
  if (mallctl != nullptr) {
    // jemalloc's statistics are a snapshot refreshed by advancing its epoch.
    std::uint64_t epoch = 1;
    std::size_t length = sizeof(epoch);
    (void)mallctl("epoch", &epoch, &length, &epoch, length);
    std::size_t allocated = 0;
    length = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &length, nullptr, 0) != 0) return 0;
    return allocated;
  }
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

}  // namespace tokend::core
