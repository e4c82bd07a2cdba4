// File: tests/bench/baselines.cc
#include "tests/bench/baselines.h"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "tests/bench/affinity.h"
#include "tests/bench/stats.h"

namespace vrpc {
namespace bench {
namespace {

// Runs |partner| on a thread pinned to CPU 1 and |self| here on CPU 0;
// this thread's affinity is restored afterwards.
void RunPinnedPair(const std::function<void()>& self, const std::function<void()>& partner) {
  cpu_set_t saved;
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  std::thread t([&] {
    PinThisThread(1);
    partner();
  });
  PinThisThread(0);
  self();
  t.join();
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
}

inline void CpuRelax() { __builtin_ia32_pause(); }

struct alignas(64) PaddedCounter {
  std::atomic<uint64_t> value{0};
};

// A single-producer single-consumer ring of 64-byte slots.
class SpscRing {
 public:
  void Push(const char* msg) {
    const uint64_t t = tail_.value.load(std::memory_order_relaxed);
    while (t - head_.value.load(std::memory_order_acquire) >= kSlots) CpuRelax();
    std::memcpy(slots_[t % kSlots].bytes, msg, 64);
    tail_.value.store(t + 1, std::memory_order_release);
  }
  void Pop(char* msg) {
    const uint64_t h = head_.value.load(std::memory_order_relaxed);
    while (tail_.value.load(std::memory_order_acquire) == h) CpuRelax();
    std::memcpy(msg, slots_[h % kSlots].bytes, 64);
    head_.value.store(h + 1, std::memory_order_release);
  }

 private:
  static constexpr uint64_t kSlots = 64;
  struct alignas(64) Slot {
    char bytes[64];
  };
  PaddedCounter head_;
  PaddedCounter tail_;
  Slot slots_[kSlots];
};

bool ReadFull(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

std::vector<double> CacheLineRttNs(int samples) {
  PaddedCounter ping, pong;
  std::vector<double> out;
  out.reserve(samples);
  const uint64_t total = static_cast<uint64_t>(samples) * kGroup;
  RunPinnedPair(
      [&] {
        uint64_t i = 0;
        for (int s = 0; s < samples; ++s) {
          const Clock::time_point start = Clock::now();
          for (int g = 0; g < kGroup; ++g) {
            ++i;
            ping.value.store(i, std::memory_order_release);
            while (pong.value.load(std::memory_order_acquire) != i) CpuRelax();
          }
          out.push_back(NsSince(start) / kGroup);
        }
      },
      [&] {
        for (uint64_t i = 1; i <= total; ++i) {
          while (ping.value.load(std::memory_order_acquire) != i) CpuRelax();
          pong.value.store(i, std::memory_order_release);
        }
      });
  return out;
}

std::vector<double> SpscRingRttNs(int samples) {
  auto there = std::make_unique<SpscRing>();
  auto back = std::make_unique<SpscRing>();
  std::vector<double> out;
  out.reserve(samples);
  const int total = samples * kGroup;
  RunPinnedPair(
      [&] {
        char msg[64] = {1}, reply[64];
        for (int s = 0; s < samples; ++s) {
          const Clock::time_point start = Clock::now();
          for (int g = 0; g < kGroup; ++g) {
            there->Push(msg);
            back->Pop(reply);
            msg[0] = reply[0] + 1;
          }
          out.push_back(NsSince(start) / kGroup);
        }
      },
      [&] {
        char msg[64];
        for (int i = 0; i < total; ++i) {
          there->Pop(msg);
          back->Push(msg);
        }
      });
  return out;
}

std::vector<double> EventfdRttNs(int samples) {
  const int to_partner = eventfd(0, EFD_CLOEXEC);
  const int to_self = eventfd(0, EFD_CLOEXEC);
  std::vector<double> out;
  out.reserve(samples);
  RunPinnedPair(
      [&] {
        uint64_t v = 1;
        for (int s = 0; s < samples; ++s) {
          const Clock::time_point start = Clock::now();
          if (write(to_partner, &v, 8) != 8 || read(to_self, &v, 8) != 8) break;
          out.push_back(NsSince(start));
        }
      },
      [&] {
        uint64_t v = 1;
        for (int s = 0; s < samples; ++s) {
          if (read(to_partner, &v, 8) != 8 || write(to_self, &v, 8) != 8) break;
        }
      });
  close(to_partner);
  close(to_self);
  return out;
}

std::vector<double> UnixSocketRttNs(int samples, size_t bytes) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return {};
  std::vector<double> out;
  out.reserve(samples);
  RunPinnedPair(
      [&] {
        std::vector<char> msg(bytes, 'x');
        for (int s = 0; s < samples; ++s) {
          const Clock::time_point start = Clock::now();
          if (!WriteFull(sv[0], msg.data(), bytes) || !ReadFull(sv[0], msg.data(), bytes)) break;
          out.push_back(NsSince(start));
        }
      },
      [&] {
        std::vector<char> msg(bytes);
        for (int s = 0; s < samples; ++s) {
          if (!ReadFull(sv[1], msg.data(), bytes) || !WriteFull(sv[1], msg.data(), bytes)) break;
        }
      });
  close(sv[0]);
  close(sv[1]);
  return out;
}

double MemcpyGBps(size_t bytes, int reps) {
  std::vector<char> src(bytes, 'a'), dst(bytes, 'b');
  std::memcpy(dst.data(), src.data(), bytes);  // warm
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < reps; ++i) {
    src[i % bytes] = static_cast<char>(i);
    std::memcpy(dst.data(), src.data(), bytes);
    asm volatile("" : : "r"(dst.data()) : "memory");
  }
  return static_cast<double>(bytes) * reps / NsSince(start);
}

double UnixStreamGBps(size_t total, size_t chunk) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  double ns = 0;
  RunPinnedPair(
      [&] {
        std::vector<char> buf(chunk, 'y');
        const Clock::time_point start = Clock::now();
        for (size_t sent = 0; sent < total; sent += chunk) {
          if (!WriteFull(sv[0], buf.data(), chunk)) break;
        }
        char ack;
        if (read(sv[0], &ack, 1) == 1) ns = NsSince(start);
      },
      [&] {
        std::vector<char> buf(chunk);
        size_t got = 0;
        while (got < total) {
          const ssize_t r = read(sv[1], buf.data(), buf.size());
          if (r <= 0) break;
          got += static_cast<size_t>(r);
        }
        char ack = 1;
        if (write(sv[1], &ack, 1) != 1) return;
      });
  close(sv[0]);
  close(sv[1]);
  return ns > 0 ? static_cast<double>(total) / ns : 0;
}

}  // namespace bench
}  // namespace vrpc
