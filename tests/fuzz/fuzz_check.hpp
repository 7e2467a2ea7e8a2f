// Invariant checks for the fuzz targets. A failed check prints why and traps, so libFuzzer records
// the input as a crash and the replay test (tests/fuzz/replay_main.cpp) fails on it too.
#pragma once

#include <cstdio>
#include <cstdlib>

// Never prints the input: some inputs hold keys, and libFuzzer keeps the reproducer file anyway.
#define FUZZ_CHECK(cond, why)                                                                          \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d: %s)\n", why, __FILE__, __LINE__, #cond); \
      std::fflush(stderr);                                                                             \
      __builtin_trap();                                                                                \
    }                                                                                                  \
  } while (false)
