// File: core/io/manual_reactor.h
//
// ManualReactor: a Reactor for tests. Time stands still until AdvanceTime;
// nothing runs until RunUntilIdle (or AdvanceTime) is called, on the calling
// thread. Fd watches are real: RunUntilIdle polls the watched fds without
// blocking, so tests can use real eventfds and sockets with a fake clock.
#ifndef VRPC_CORE_IO_MANUAL_REACTOR_H_
#define VRPC_CORE_IO_MANUAL_REACTOR_H_

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/io/reactor.h"

namespace vrpc {
namespace io {

class ManualReactor final : public Reactor {
 public:
  explicit ManualReactor(absl::Time start = absl::UnixEpoch()) : now_(start) {}
  ManualReactor(const ManualReactor&) = delete;
  ManualReactor& operator=(const ManualReactor&) = delete;

  absl::StatusOr<WatchId> Watch(int fd, uint32_t events,
                                absl::AnyInvocable<void(uint32_t)> on_ready) override;
  void Unwatch(WatchId id) override;
  TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) override;
  void CancelTimer(TimerId id) override;
  void Post(absl::AnyInvocable<void()> fn) override;  // thread-safe
  // Pollers run once per round, after everything else, and count as work:
  // RunUntilIdle runs |max_rounds| while one is registered.
  PollerId AddPoller(absl::AnyInvocable<void()> fn) override;
  void RemovePoller(PollerId id) override;
  absl::Time Now() const override { return now_; }
  // True inside RunUntilIdle / AdvanceTime's callbacks, on their thread.
  bool InLoop() const override;

  // Runs posted functions, ready fd callbacks and timers due at Now() until
  // none is left, or |max_rounds| rounds ran (a guard against a callback
  // that keeps itself ready forever). Returns the number of callbacks run.
  size_t RunUntilIdle(size_t max_rounds = 10000);

  // Moves the clock forward by |d|, stopping at each timer deadline on the
  // way to run it and everything it makes ready.
  void AdvanceTime(absl::Duration d);

 private:
  struct WatchEntry {
    int fd;
    uint32_t events;
    absl::AnyInvocable<void(uint32_t)> on_ready;
    bool cancelled = false;
  };
  struct Poller {
    absl::AnyInvocable<void()> fn;
    bool removed = false;  // removed while running; erased when it returns
  };
  size_t RunRound();
  WatchId running_watch_ = 0;  // whose callback is on the stack
  PollerId running_poller_ = 0;
  std::map<PollerId, Poller> pollers_;

  absl::Time now_;
  uint64_t next_id_ = 1;
  std::map<WatchId, WatchEntry> watches_;  // ordered: deterministic rounds
  std::multimap<absl::Time, TimerId> timer_order_;
  absl::flat_hash_map<TimerId, absl::AnyInvocable<void()>> timers_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not built with TSan
  // annotations, so --config=tsan could not see an absl::Mutex.
  std::mutex post_mu_;
  std::vector<absl::AnyInvocable<void()>> posted_;  // guarded by post_mu_
};

}  // namespace io
}  // namespace vrpc

#endif  // VRPC_CORE_IO_MANUAL_REACTOR_H_
