#include "core/io/manual_reactor.h"

#include <poll.h>

#include <utility>

#include "absl/status/status.h"

namespace vrpc {
namespace io {
namespace {

// The reactor whose round is on this thread's stack, if any.
thread_local const ManualReactor* running_here = nullptr;

}  // namespace

bool ManualReactor::InLoop() const { return running_here == this; }

absl::StatusOr<WatchId> ManualReactor::Watch(int fd, uint32_t events,
                                             absl::AnyInvocable<void(uint32_t)> on_ready) {
  if (fd < 0 || events == 0) return absl::InvalidArgumentError("bad watch");
  const WatchId id = next_id_++;
  watches_.emplace(id, WatchEntry{fd, events, std::move(on_ready)});
  return id;
}

void ManualReactor::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  // A running callback's closure is erased when it returns, not under it.
  if (id == running_watch_) {
    it->second.cancelled = true;
  } else {
    watches_.erase(it);
  }
}

TimerId ManualReactor::RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) {
  const TimerId id = next_id_++;
  timers_.emplace(id, std::move(fn));
  timer_order_.emplace(deadline, id);
  return id;
}

void ManualReactor::CancelTimer(TimerId id) { timers_.erase(id); }

void ManualReactor::Post(absl::AnyInvocable<void()> fn) {
  std::lock_guard<std::mutex> lock(post_mu_);
  posted_.push_back(std::move(fn));
}

PollerId ManualReactor::AddPoller(absl::AnyInvocable<void()> fn) {
  const PollerId id = next_id_++;
  pollers_.emplace(id, Poller{std::move(fn)});
  return id;
}

void ManualReactor::RemovePoller(PollerId id) {
  auto it = pollers_.find(id);
  if (it == pollers_.end()) return;
  if (running_poller_ == id) {
    it->second.removed = true;  // erased once it returns
  } else {
    pollers_.erase(it);
  }
}

size_t ManualReactor::RunRound() {
  const ManualReactor* const saved = running_here;
  running_here = this;
  struct Restore {
    const ManualReactor* saved;
    ~Restore() { running_here = saved; }
  } restore{saved};
  size_t ran = 0;
  std::vector<absl::AnyInvocable<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) {
    fn();
    ++ran;
  }
  // Poll every watched fd once, then call back the ready ones that are
  // still watched (a callback may unwatch another).
  std::vector<std::pair<WatchId, uint32_t>> ready;
  for (const auto& [id, w] : watches_) {
    pollfd p{w.fd, static_cast<short>(w.events), 0};
    if (::poll(&p, 1, 0) == 1 && p.revents != 0) {
      ready.emplace_back(id, static_cast<uint32_t>(p.revents));
    }
  }
  for (const auto& [id, revents] : ready) {
    auto it = watches_.find(id);
    if (it == watches_.end() || it->second.cancelled) continue;
    running_watch_ = id;
    it->second.on_ready(revents);
    running_watch_ = 0;
    it = watches_.find(id);
    if (it != watches_.end() && it->second.cancelled) watches_.erase(it);
    ++ran;
  }
  while (!timer_order_.empty() && timer_order_.begin()->first <= now_) {
    const TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    auto fn = std::move(it->second);
    timers_.erase(it);
    fn();
    ++ran;
  }
  // Pollers registered when the pass starts; each counts as work, as a task
  // re-posted every round would.
  std::vector<PollerId> ids;
  for (const auto& [id, p] : pollers_) ids.push_back(id);
  for (PollerId id : ids) {
    auto it = pollers_.find(id);
    if (it == pollers_.end()) continue;
    running_poller_ = id;
    it->second.fn();
    running_poller_ = 0;
    it = pollers_.find(id);
    if (it != pollers_.end() && it->second.removed) pollers_.erase(it);
    ++ran;
  }
  return ran;
}

size_t ManualReactor::RunUntilIdle(size_t max_rounds) {
  size_t total = 0;
  for (size_t round = 0; round < max_rounds; ++round) {
    const size_t ran = RunRound();
    if (ran == 0) break;
    total += ran;
  }
  return total;
}

void ManualReactor::AdvanceTime(absl::Duration d) {
  const absl::Time end = now_ + d;
  RunUntilIdle();
  while (!timer_order_.empty() && timer_order_.begin()->first <= end) {
    if (timer_order_.begin()->first > now_) now_ = timer_order_.begin()->first;
    RunUntilIdle();
  }
  now_ = end;
  RunUntilIdle();
}

}  // namespace io
}  // namespace vrpc
