// File: tests/bench/baselines.h
//
// The machine's floors, measured in the same run as vrpc: what the same
// hardware and kernel do with no RPC framework. Every latency function runs
// one batch between this thread (pinned to CPU 0 for the batch) and a
// partner thread (pinned to CPU 1) and returns one sample per round trip
// (or per |kGroup| round trips for the sub-100 ns ones), in nanoseconds.
// Must not be called concurrently with another batch.
#ifndef VRPC_TESTS_BENCH_BASELINES_H_
#define VRPC_TESTS_BENCH_BASELINES_H_

#include <cstddef>
#include <vector>

namespace vrpc {
namespace bench {

// Round trips timed together per sample by the shared-memory batches.
inline constexpr int kGroup = 16;

// A cache line written by one thread, answered by the other.
std::vector<double> CacheLineRttNs(int samples);
// 64 B messages through two single-producer single-consumer rings.
std::vector<double> SpscRingRttNs(int samples);
// Two eventfds, blocking reads: the notification (wake-up) floor.
std::vector<double> EventfdRttNs(int samples);
// |bytes| over an AF_UNIX stream socketpair and back, blocking.
std::vector<double> UnixSocketRttNs(int samples, size_t bytes);

// memcpy of |bytes| (cache-warm buffers), |reps| times: GB/s (1e9 B/s).
double MemcpyGBps(size_t bytes, int reps);
// |total| bytes written in |chunk| writes through an AF_UNIX stream
// socketpair to a reading thread: GB/s.
double UnixStreamGBps(size_t total, size_t chunk);

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_BASELINES_H_
