// File: tests/bench/rss_workload.h
//
// The memory comparison's workload, the same for vrpc and gRPC clients:
// kRssEchoCalls Echo calls of 64 B, kRssSinkCalls Sink calls of 1 MiB and
// one StreamSink of kRssStreamMessages x 1 MiB. The peers' VmRSS/VmHWM are
// read after it.
#ifndef VRPC_TESTS_BENCH_RSS_WORKLOAD_H_
#define VRPC_TESTS_BENCH_RSS_WORKLOAD_H_

#include <cstddef>
#include <functional>

namespace vrpc {
namespace bench {

inline constexpr int kRssEchoCalls = 1000;
inline constexpr int kRssSinkCalls = 8;
inline constexpr int kRssStreamMessages = 8;
inline constexpr size_t kMiB = 1 << 20;

// Each function makes one call (or one stream) and says whether it
// succeeded. Returns false at the first failure.
inline bool RunRssWorkload(const std::function<bool(size_t)>& echo,
                           const std::function<bool(size_t)>& sink,
                           const std::function<bool(int, size_t)>& stream) {
  for (int i = 0; i < kRssEchoCalls; ++i) {
    if (!echo(64)) return false;
  }
  for (int i = 0; i < kRssSinkCalls; ++i) {
    if (!sink(kMiB)) return false;
  }
  return stream(kRssStreamMessages, kMiB);
}

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_RSS_WORKLOAD_H_
