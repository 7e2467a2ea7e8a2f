// tokend-micro: Google Benchmark micro-benchmarks of the hot-path pieces (keys, cache, HTTP parse
// and response build, the group-commit writer). One executable; each area lives in its own
// bench/micro_*.cpp. Run e.g. `tokend-micro --benchmark_min_time=0.2 --benchmark_filter=cache`.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
