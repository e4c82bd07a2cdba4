#include "core/io/uring_reactor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>  // RUNNING_ON_VALGRIND: a few instructions, 0 natively
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace io {
namespace {

// user_data of POLL_REMOVE completions: never a watch id.
constexpr uint64_t kRemoveTag = ~uint64_t{0};
// The longest single wait, so Stop() from a signal handler-free thread
// is noticed even if the eventfd write were lost.
constexpr absl::Duration kMaxWait = absl::Seconds(1);

// The reactor whose RunOnce is on this thread's stack, if any.
thread_local const UringReactor* running_here = nullptr;

class RunningScope {
 public:
  explicit RunningScope(const UringReactor* r) : saved_(running_here) { running_here = r; }
  ~RunningScope() { running_here = saved_; }

 private:
  const UringReactor* const saved_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<UringReactor>> UringReactor::Create(unsigned entries) {
  std::unique_ptr<UringReactor> r(new UringReactor());
  const int rc = io_uring_queue_init(entries, &r->ring_, 0);
  if (rc < 0) return absl::ErrnoToStatus(-rc, "io_uring_queue_init");
  r->ring_ready_ = true;
  r->wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!r->wake_fd_.valid()) return absl::ErrnoToStatus(errno, "eventfd");
  UringReactor* self = r.get();
  auto watch = r->Watch(r->wake_fd_.get(), kReadable, [self](uint32_t) {
    uint64_t value;
    while (::read(self->wake_fd_.get(), &value, sizeof(value)) > 0) {
    }
  });
  if (!watch.ok()) return watch.status();
  r->wake_watch_ = *watch;
  return r;
}

UringReactor::~UringReactor() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* UringReactor::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // The submission queue is full: flush it and try once more.
    (void)io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

absl::Status UringReactor::Arm(WatchId id, WatchEntry& entry) {
  io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) return absl::ResourceExhaustedError("io_uring submission queue full");
  io_uring_prep_poll_add(sqe, entry.fd, entry.events);
  io_uring_sqe_set_data64(sqe, id);
  entry.armed = true;
  return absl::OkStatus();
}

absl::StatusOr<WatchId> UringReactor::Watch(int fd, uint32_t events,
                                            absl::AnyInvocable<void(uint32_t)> on_ready) {
  if (fd < 0 || events == 0) return absl::InvalidArgumentError("bad watch");
  const WatchId id = next_id_++;
  WatchEntry& entry = watches_[id];
  entry.fd = fd;
  entry.events = events;
  entry.on_ready = std::move(on_ready);
  if (absl::Status s = Arm(id, entry); !s.ok()) {
    watches_.erase(id);
    return s;
  }
  return id;
}

void UringReactor::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end() || it->second.cancelled) return;
  it->second.cancelled = true;
  // A running callback's closure is erased when it returns, not under it.
  if (!it->second.armed && id != running_watch_) {
    watches_.erase(it);
    return;
  }
  // Keep the entry until the poll's completion arrives, so its user_data
  // never meets a reused id; the callback is not called again.
  if (io_uring_sqe* sqe = GetSqe()) {
    io_uring_prep_poll_remove(sqe, id);
    io_uring_sqe_set_data64(sqe, kRemoveTag);
    // Submit now: an armed poll holds a reference to the fd's file, so a
    // caller that closes the fd next would otherwise keep the socket open
    // (its peer not seeing the hang-up) until the loop's next turn.
    (void)io_uring_submit(&ring_);
  }
}

TimerId UringReactor::RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) {
  const TimerId id = next_id_++;
  timers_.emplace(id, std::make_pair(deadline, std::move(fn)));
  timer_order_.emplace(deadline, id);
  return id;
}

void UringReactor::CancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto range = timer_order_.equal_range(it->second.first);
  for (auto o = range.first; o != range.second; ++o) {
    if (o->second == id) {
      timer_order_.erase(o);
      break;
    }
  }
  timers_.erase(it);
}

bool UringReactor::InLoop() const { return running_here == this; }

void UringReactor::Post(absl::AnyInvocable<void()> fn) {
  if (running_here == this) {
    // From one of this loop's callbacks: no lock, no wake-up needed.
    local_posted_.push_back(std::move(fn));
    return;
  }
  bool wake;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(fn));
    // A loop that is not (about to be) waiting looks at posted_ before it
    // next waits: a busy-polling loop takes posts without a system call.
    wake = waiting_;
    waiting_ = false;  // one wake-up is enough
    remote_posted_.store(true, std::memory_order_release);
  }
  if (!wake) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void UringReactor::Stop() {
  stop_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void UringReactor::HandleCompletion(uint64_t user_data, int res) {
  if (user_data == kRemoveTag) return;
  auto it = watches_.find(user_data);
  if (it == watches_.end()) return;
  it->second.armed = false;
  if (it->second.cancelled || res == -ECANCELED) {
    watches_.erase(it);
    return;
  }
  if (res < 0) {
    VRPC_LOG(WARNING) << "poll on fd " << it->second.fd << " failed: " << std::strerror(-res);
    res = POLLERR;
  }
  running_watch_ = user_data;
  it->second.on_ready(static_cast<uint32_t>(res));
  running_watch_ = 0;
  // The callback may have unwatched (and erased) itself or added watches.
  it = watches_.find(user_data);
  if (it == watches_.end()) return;
  if (it->second.cancelled) {
    watches_.erase(it);
    return;
  }
  if (absl::Status s = Arm(user_data, it->second); !s.ok()) {
    VRPC_LOG(ERROR) << "re-arming fd " << it->second.fd << ": " << s;
  }
}

void UringReactor::RunDueTimers() {
  const absl::Time now = Now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    const TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    absl::AnyInvocable<void()> fn = std::move(it->second.second);
    timers_.erase(it);
    fn();
  }
}

void UringReactor::RunPosted() {
  // running_ keeps its capacity from turn to turn; a nested RunOnce (from a
  // posted function) finds it in use and runs its own batch.
  std::vector<absl::AnyInvocable<void()>> batch;
  batch.swap(running_);
  if (remote_posted_.exchange(false, std::memory_order_acq_rel)) {
    std::lock_guard<std::mutex> lock(post_mu_);
    batch.swap(posted_);
  }
  // Then what this loop's own callbacks posted (kept in order among
  // themselves; posts from other threads have no order relative to them).
  if (!local_posted_.empty()) {
    if (batch.empty()) {
      batch.swap(local_posted_);
    } else {
      for (auto& fn : local_posted_) batch.push_back(std::move(fn));
      local_posted_.clear();
    }
  }
  for (auto& fn : batch) fn();
  batch.clear();
  if (running_.capacity() < batch.capacity()) running_.swap(batch);
}

PollerId UringReactor::AddPoller(absl::AnyInvocable<void()> fn) {
  const PollerId id = next_id_++;
  // Not into pollers_ while a poller runs: growing it would move the
  // running one.
  (running_pollers_ ? added_pollers_ : pollers_).emplace_back(id, std::move(fn));
  return id;
}

void UringReactor::RemovePoller(PollerId id) {
  for (auto* list : {&pollers_, &added_pollers_}) {
    for (auto it = list->begin(); it != list->end(); ++it) {
      if (it->first != id) continue;
      if (running_pollers_) {
        it->first = 0;  // destroyed after the pass: it may be running now
        pollers_removed_ = true;
      } else {
        list->erase(it);
      }
      return;
    }
  }
}

void UringReactor::RunPollers() {
  if (running_pollers_) return;  // a nested RunOnce from a poller
  running_pollers_ = true;
  for (auto& [id, fn] : pollers_) {
    if (id != 0) fn();
  }
  running_pollers_ = false;
  if (pollers_removed_) {
    pollers_removed_ = false;
    auto removed = [](const auto& p) { return p.first == 0; };
    pollers_.erase(std::remove_if(pollers_.begin(), pollers_.end(), removed), pollers_.end());
    added_pollers_.erase(
        std::remove_if(added_pollers_.begin(), added_pollers_.end(), removed),
        added_pollers_.end());
  }
  for (auto& p : added_pollers_) pollers_.push_back(std::move(p));
  added_pollers_.clear();
}

absl::Status UringReactor::RunOnce(absl::Duration max_wait) {
  RunningScope scope(this);
  absl::Duration wait = pollers_.empty() ? std::min(max_wait, kMaxWait) : absl::ZeroDuration();
  if (!timer_order_.empty() && wait > absl::ZeroDuration()) {
    wait = std::max(absl::ZeroDuration(),
                    std::min(wait, timer_order_.begin()->first - absl::Now()));
  }
  if (!local_posted_.empty()) wait = absl::ZeroDuration();
  if (wait > absl::ZeroDuration()) {
    // Decided under the lock Post takes: a Post after this either sees
    // waiting_ (and writes the wake eventfd) or was seen here. A turn that
    // will not wait skips the lock; waiting_ is false then.
    std::lock_guard<std::mutex> lock(post_mu_);
    if (!posted_.empty()) wait = absl::ZeroDuration();
    waiting_ = wait > absl::ZeroDuration();
  }
  if (wait > absl::ZeroDuration() && RUNNING_ON_VALGRIND) {
    // Valgrind 3.19 takes io_uring_enter for a call that does not block and
    // holds its big lock through the wait, so no other thread runs: wait in
    // poll(2) on the ring instead (a few ms at a time), which it knows.
    (void)io_uring_submit(&ring_);
    if (io_uring_cq_ready(&ring_) == 0) {
      pollfd p{ring_.ring_fd, POLLIN, 0};
      const int64_t ms = std::min(absl::ToInt64Milliseconds(wait), int64_t{5});
      (void)::poll(&p, 1, static_cast<int>(ms));
    }
  } else if (wait > absl::ZeroDuration() || io_uring_sq_ready(&ring_) > 0 ||
             io_uring_cq_has_overflow(&ring_)) {
    const timespec t = absl::ToTimespec(wait);
    __kernel_timespec ts{t.tv_sec, t.tv_nsec};
    io_uring_cqe* cqe = nullptr;
    const unsigned wait_for = wait > absl::ZeroDuration() ? 1 : 0;
    const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_for, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN) {
      return absl::ErrnoToStatus(-rc, "io_uring_submit_and_wait_timeout");
    }
  }
  if (wait > absl::ZeroDuration()) {
    std::lock_guard<std::mutex> lock(post_mu_);
    waiting_ = false;
  }
  turn_time_valid_ = false;  // Now() reads the clock when first asked
  // Without a wait, completions are read from the shared ring as they are:
  // the kernel posts poll completions without our entering it.
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  completions_.clear();
  io_uring_for_each_cqe(&ring_, head, cqe) {
    completions_.emplace_back(io_uring_cqe_get_data64(cqe), cqe->res);
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
  // A callback may run a nested RunOnce (tests do): iterate a copy.
  if (!completions_.empty()) {
    std::vector<std::pair<uint64_t, int>> done;
    done.swap(completions_);
    for (const auto& [user_data, res] : done) HandleCompletion(user_data, res);
    done.clear();
    if (completions_.capacity() < done.capacity()) completions_.swap(done);
  }
  if (!timer_order_.empty()) RunDueTimers();
  RunPosted();
  if (!pollers_.empty()) RunPollers();
  return absl::OkStatus();
}

absl::Status UringReactor::Run() {
  while (!stop_.load(std::memory_order_acquire)) {
    if (absl::Status s = RunOnce(kMaxWait); !s.ok()) return s;
  }
  // Closures posted before the stop still run (they may release resources
  // that unwatch fds, which needs the ring); a bounded number of rounds, as
  // they may post more.
  for (int round = 0; round < 16; ++round) {
    {
      std::lock_guard<std::mutex> lock(post_mu_);
      if (posted_.empty() && local_posted_.empty()) break;
    }
    remote_posted_.store(true, std::memory_order_relaxed);  // look under the lock
    RunPosted();
  }
  return absl::OkStatus();
}

}  // namespace io
}  // namespace vrpc
