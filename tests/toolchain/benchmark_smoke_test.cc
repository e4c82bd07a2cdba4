// Links Google Benchmark via //third_party:benchmark_main and runs one tiny
// benchmark (the test passes --benchmark_min_time to keep it short).

#include <string>

#include "benchmark/benchmark.h"

namespace {

void BM_StringAppend(benchmark::State& state) {
  for (auto _ : state) {
    std::string s;
    for (int i = 0; i < 16; ++i) s += 'x';
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_StringAppend);

}  // namespace
