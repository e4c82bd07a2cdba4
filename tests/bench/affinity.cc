// File: tests/bench/affinity.cc
#include "tests/bench/affinity.h"

#include <pthread.h>
#include <sched.h>

#include <thread>

namespace vrpc {
namespace bench {

bool PinThisThread(int cpu) {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus > 0 ? cpu % cpus : 0, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

bool PinLoopThread(io::EventLoopThread& loop, int cpu) {
  bool pinned = false;
  loop.RunSync([&] { pinned = PinThisThread(cpu); });
  return pinned;
}

}  // namespace bench
}  // namespace vrpc
