// File: tests/bench/affinity.h
//
// CPU placement for the benchmark. The two-thread baselines run pinned to
// CPUs 0 and 1; a ratio against them is fair only when vrpc's two loops
// (client driver, server device) sit on CPUs 0 and 1 as well, rather than
// wherever the scheduler put each process when it started.
#ifndef VRPC_TESTS_BENCH_AFFINITY_H_
#define VRPC_TESTS_BENCH_AFFINITY_H_

#include "core/io/event_loop_thread.h"

namespace vrpc {
namespace bench {

// Pins the calling thread to |cpu| (modulo the CPUs present). False if the
// kernel refused.
bool PinThisThread(int cpu);

// Pins |loop|'s thread to |cpu|, from that thread. False if the kernel
// refused.
bool PinLoopThread(io::EventLoopThread& loop, int cpu);

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_AFFINITY_H_
