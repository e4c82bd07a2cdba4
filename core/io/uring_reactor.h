// File: core/io/uring_reactor.h
//
// UringReactor: the Reactor on io_uring (liburing). Fd readiness uses
// one-shot IORING_OP_POLL_ADD re-armed after each callback (level-triggered),
// timers are kept in process and bound the wait, and Post wakes the loop
// through an eventfd.
#ifndef VRPC_CORE_IO_URING_REACTOR_H_
#define VRPC_CORE_IO_URING_REACTOR_H_

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "core/base/unique_fd.h"
#include "core/io/reactor.h"

namespace vrpc {
namespace io {

class UringReactor final : public Reactor {
 public:
  // Sets up a ring of |entries| submission slots. Errors from
  // io_uring_queue_init / eventfd (e.g. kPermissionDenied in a sandbox that
  // forbids io_uring).
  static absl::StatusOr<std::unique_ptr<UringReactor>> Create(unsigned entries = 256);
  ~UringReactor() override;
  UringReactor(const UringReactor&) = delete;
  UringReactor& operator=(const UringReactor&) = delete;

  absl::StatusOr<WatchId> Watch(int fd, uint32_t events,
                                absl::AnyInvocable<void(uint32_t)> on_ready) override;
  void Unwatch(WatchId id) override;
  TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) override;
  void CancelTimer(TimerId id) override;
  void Post(absl::AnyInvocable<void()> fn) override;
  PollerId AddPoller(absl::AnyInvocable<void()> fn) override;
  void RemovePoller(PollerId id) override;
  // From this loop's callbacks: the time of the current turn, read once,
  // when the turn first asks (a polling loop's empty turns never read the
  // clock), and the same for every callback of the turn; from other
  // threads: absl::Now().
  absl::Time Now() const override {
    if (!InLoop()) return absl::Now();
    if (!turn_time_valid_) {
      turn_start_ = absl::Now();
      turn_time_valid_ = true;
    }
    return turn_start_;
  }
  bool InLoop() const override;

  // Runs the loop on the calling thread until Stop(). Returns the first
  // io_uring error, or OK after Stop(), once the closures posted before
  // the stop have run.
  absl::Status Run();
  // Makes Run() return after the current iteration (or at once, if called
  // before Run). Sticky: a stopped reactor does not run again. Thread-safe.
  void Stop();
  // One iteration: waits up to |max_wait| for events, then runs ready
  // callbacks, due timers, posted functions and pollers. A turn with work
  // already posted, or with pollers, does not wait, and makes no system call
  // unless submissions are queued: a busy-polling turn (the driver and
  // device in poll mode) costs little more than its pollers.
  // Post() from the loop's own callbacks takes no lock. From other threads
  // it writes the wake eventfd only when the loop may be blocked in a wait
  // (never while it busy-polls).
  absl::Status RunOnce(absl::Duration max_wait);

 private:
  struct WatchEntry {
    int fd;
    uint32_t events;
    absl::AnyInvocable<void(uint32_t)> on_ready;
    bool armed = false;     // a POLL_ADD is in flight
    bool cancelled = false; // Unwatch called; erase when the poll completes
  };

  UringReactor() = default;
  absl::Status Arm(WatchId id, WatchEntry& entry);
  void HandleCompletion(uint64_t user_data, int res);
  void RunDueTimers();
  void RunPosted();
  void RunPollers();
  io_uring_sqe* GetSqe();

  io_uring ring_{};
  bool ring_ready_ = false;
  UniqueFd wake_fd_;
  WatchId wake_watch_ = 0;
  WatchId running_watch_ = 0;  // whose callback is on the stack
  uint64_t next_id_ = 1;
  // Node-based: a running callback stays put while it adds watches.
  absl::node_hash_map<WatchId, WatchEntry> watches_;
  std::multimap<absl::Time, TimerId> timer_order_;
  absl::flat_hash_map<TimerId, std::pair<absl::Time, absl::AnyInvocable<void()>>> timers_;
  std::atomic<bool> stop_{false};
  mutable absl::Time turn_start_;      // loop thread: Now() for callbacks
  mutable bool turn_time_valid_ = false;  // loop thread: turn_start_ read this turn
  // std::mutex, not absl::Mutex: Debian's Abseil is not built with TSan
  // annotations, so --config=tsan could not see an absl::Mutex.
  std::mutex post_mu_;
  std::vector<absl::AnyInvocable<void()>> posted_;  // guarded by post_mu_
  bool waiting_ = false;  // guarded by post_mu_: the loop may block; Post must wake it
  std::atomic<bool> remote_posted_{false};  // posted_ may be non-empty
  std::vector<absl::AnyInvocable<void()>> local_posted_;  // loop thread: its own posts
  std::vector<absl::AnyInvocable<void()>> running_;  // loop thread: the batch being run
  std::vector<std::pair<uint64_t, int>> completions_;  // loop thread: reused per turn
  // Loop thread. During a pass over pollers_, added pollers wait in
  // added_pollers_ and removed ones are marked (id 0) and erased after it.
  std::vector<std::pair<PollerId, absl::AnyInvocable<void()>>> pollers_;
  std::vector<std::pair<PollerId, absl::AnyInvocable<void()>>> added_pollers_;
  bool running_pollers_ = false;
  bool pollers_removed_ = false;
};

}  // namespace io
}  // namespace vrpc

#endif  // VRPC_CORE_IO_URING_REACTOR_H_
