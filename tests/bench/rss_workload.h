// File: tests/bench/rss_workload.h
//
// The memory comparison's workload, the same for vrpc and gRPC clients:
// kRssEchoCalls Echo calls of 64 B, kRssSinkCalls Sink calls of 1 MiB and
// one StreamSink of kRssStreamMessages x 1 MiB. The peers' VmRSS/VmHWM are
// read after it.
#ifndef VRPC_TESTS_BENCH_RSS_WORKLOAD_H_
#define VRPC_TESTS_BENCH_RSS_WORKLOAD_H_

#include <cstddef>
#include <cstdio>

#include "tests/bench/child_process.h"

namespace vrpc {
namespace bench {

inline constexpr int kRssEchoCalls = 1000;
inline constexpr int kRssSinkCalls = 8;
inline constexpr int kRssStreamMessages = 8;
inline constexpr size_t kMiB = 1 << 20;

// Runs the workload with |client| (VrpcClient or GrpcClient: the same
// methods), then prints this process's "ready rss_kb=N hwm_kb=N" for
// compare (or "error ..."). Returns the process exit status.
template <typename Client>
int RunRssWorkload(Client& client) {
  bool ok = true;
  for (int i = 0; ok && i < kRssEchoCalls; ++i) ok = !client.UnaryRttNs(1, 64).empty();
  for (int i = 0; ok && i < kRssSinkCalls; ++i) ok = client.UnaryThroughputGBps(1, kMiB) > 0;
  ok = ok && client.StreamThroughputGBps(kRssStreamMessages, kMiB) > 0;
  auto mem = ReadProcMemory(0);
  if (!ok || !mem.ok()) {
    std::printf("error the workload failed\n");
    return 1;
  }
  std::printf("ready rss_kb=%lld hwm_kb=%lld\n", static_cast<long long>(mem->rss_kb),
              static_cast<long long>(mem->hwm_kb));
  std::fflush(stdout);
  return 0;
}

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_RSS_WORKLOAD_H_
