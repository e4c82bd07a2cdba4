// File: core/io/reactor.h
//
// Reactor: the event-loop interface that libraries (vhost-user backend,
// device, driver, kernel transport) are written against, so none of them owns
// a loop (CONVENTIONS.md §10). Implementations: UringReactor (liburing, for
// programs) and ManualReactor (deterministic clock, for tests).
//
// Threading: a reactor runs on one thread. Watch, Unwatch, RunAt and
// CancelTimer must be called on that thread (or before the loop starts);
// callbacks run on it. Post and Stop-style calls of implementations are
// thread-safe and are how other threads hand work to the loop.
#ifndef VRPC_CORE_IO_REACTOR_H_
#define VRPC_CORE_IO_REACTOR_H_

#include <cstdint>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vrpc {
namespace io {

// Readiness bits, as poll(2): kReadable = POLLIN, kWritable = POLLOUT.
// Callbacks may also see POLLERR / POLLHUP bits in |revents|.
inline constexpr uint32_t kReadable = 0x001;
inline constexpr uint32_t kWritable = 0x004;

using WatchId = uint64_t;
using TimerId = uint64_t;
using PollerId = uint64_t;

class Reactor {
 public:
  virtual ~Reactor() = default;

  // Calls |on_ready(revents)| on the loop thread whenever |fd| is ready for
  // any of |events| (level-triggered: it fires again while the condition
  // holds). Does not take ownership of |fd|, which must stay open until
  // Unwatch. Returns kInvalidArgument for a negative fd or empty events, or
  // the implementation's resource error.
  virtual absl::StatusOr<WatchId> Watch(int fd, uint32_t events,
                                        absl::AnyInvocable<void(uint32_t revents)> on_ready) = 0;

  // Stops a watch. After it returns the callback is not called again (it may
  // be called from within that callback). Unknown ids are ignored.
  virtual void Unwatch(WatchId id) = 0;

  // Calls |fn| once on the loop thread at or after |deadline|.
  virtual TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) = 0;
  TimerId RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) {
    return RunAt(Now() + delay, std::move(fn));
  }
  // Cancels a timer that has not fired; unknown or fired ids are ignored.
  virtual void CancelTimer(TimerId id) = 0;

  // Runs |fn| on the loop thread soon. Thread-safe; the one call other
  // threads may make.
  virtual void Post(absl::AnyInvocable<void()> fn) = 0;

  // Calls |fn| once every turn, on the loop thread, until RemovePoller: the
  // hook for busy-polling drivers and devices, cheaper per turn than a task
  // re-posted each turn (no lock, no allocation). While a poller is
  // registered the loop does not sleep. Loop thread only (or before the
  // loop starts); a poller added by a poller first runs the next turn.
  virtual PollerId AddPoller(absl::AnyInvocable<void()> fn) = 0;
  // Stops a poller; it is not called again, and it may remove itself while
  // it runs. Unknown ids are ignored.
  virtual void RemovePoller(PollerId id) = 0;

  // The reactor's clock: the time protocol engines are given. Loops may
  // read the clock once per turn and answer callbacks with that (as libuv's
  // uv_now does): every callback of a turn sees the same time, read no
  // earlier than the turn's start.
  virtual absl::Time Now() const = 0;

  // True when called from one of this reactor's callbacks, on its thread:
  // work meant for the loop may then run at once instead of being posted.
  // Implementations that cannot tell return false (posting is always
  // correct).
  virtual bool InLoop() const { return false; }
};

// Owns at most one poller registration on a reactor: Start registers |fn|
// unless one already is, Stop (or destruction) removes it. Loop thread
// only, like AddPoller; Stop may be called from within the poller.
class ScopedPoller {
 public:
  ScopedPoller() = default;
  ~ScopedPoller() { Stop(); }
  ScopedPoller(const ScopedPoller&) = delete;
  ScopedPoller& operator=(const ScopedPoller&) = delete;

  void Start(Reactor& reactor, absl::AnyInvocable<void()> fn) {
    if (id_ != 0) return;
    reactor_ = &reactor;
    id_ = reactor.AddPoller(std::move(fn));
  }
  void Stop() {
    if (id_ == 0) return;
    reactor_->RemovePoller(id_);
    id_ = 0;
  }
  bool active() const { return id_ != 0; }

 private:
  Reactor* reactor_ = nullptr;
  PollerId id_ = 0;
};

}  // namespace io
}  // namespace vrpc

#endif  // VRPC_CORE_IO_REACTOR_H_
