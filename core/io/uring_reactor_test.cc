#include "core/io/uring_reactor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace io {
namespace {

using ::testing::ElementsAre;

UniqueFd MakeEventFd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); }

void Signal(int fd) {
  const uint64_t one = 1;
  ASSERT_EQ(::write(fd, &one, sizeof(one)), 8);
}

class UringReactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = UringReactor::Create();
    ASSERT_THAT(r, IsOk());
    reactor_ = *std::move(r);
  }
  // Runs iterations until |done| or a generous bound.
  template <typename Pred>
  bool RunUntil(Pred done) {
    for (int i = 0; i < 200 && !done(); ++i) {
      if (!reactor_->RunOnce(absl::Milliseconds(50)).ok()) return false;
    }
    return done();
  }
  std::unique_ptr<UringReactor> reactor_;
};

TEST_F(UringReactorTest, EventFdReadiness) {
  UniqueFd efd = MakeEventFd();
  int calls = 0;
  VRPC_ASSERT_OK(reactor_->Watch(efd.get(), kReadable, [&](uint32_t revents) {
                   EXPECT_TRUE(revents & kReadable);
                   uint64_t v;
                   ASSERT_EQ(::read(efd.get(), &v, sizeof(v)), 8);
                   ++calls;
                 }).status());
  VRPC_ASSERT_OK(reactor_->RunOnce(absl::Milliseconds(10)));
  EXPECT_EQ(calls, 0);
  Signal(efd.get());
  EXPECT_TRUE(RunUntil([&] { return calls == 1; }));
  Signal(efd.get());
  EXPECT_TRUE(RunUntil([&] { return calls == 2; }));
}

TEST_F(UringReactorTest, LevelTriggeredWhileNotDrained) {
  UniqueFd efd = MakeEventFd();
  Signal(efd.get());
  int calls = 0;
  VRPC_ASSERT_OK(reactor_->Watch(efd.get(), kReadable, [&](uint32_t) { ++calls; }).status());
  EXPECT_TRUE(RunUntil([&] { return calls >= 3; }));  // never drained: keeps firing
}

TEST_F(UringReactorTest, UnwatchFromInsideTheCallback) {
  UniqueFd efd = MakeEventFd();
  Signal(efd.get());
  int calls = 0;
  WatchId id = 0;
  auto watch = reactor_->Watch(efd.get(), kReadable, [&](uint32_t) {
    ++calls;
    reactor_->Unwatch(id);
  });
  ASSERT_THAT(watch, IsOk());
  id = *watch;
  EXPECT_TRUE(RunUntil([&] { return calls == 1; }));
  for (int i = 0; i < 5; ++i) VRPC_ASSERT_OK(reactor_->RunOnce(absl::Milliseconds(5)));
  EXPECT_EQ(calls, 1);  // still readable, but no longer watched
}

// A callback that adds many watches (so the watch table grows) still sees
// its own captures afterwards (found by ASan in the device e2e test). The
// captures are small so that they live inside the callback object itself.
TEST_F(UringReactorTest, CallbackMayAddWatchesAndKeepsItsCaptures) {
  struct State {
    UringReactor* reactor;
    std::vector<UniqueFd> others;
    std::vector<WatchId> added;
    WatchId self = 0;
    uint32_t seen = 0;
  } state{reactor_.get()};
  UniqueFd efd = MakeEventFd();
  Signal(efd.get());
  VRPC_ASSERT_OK_AND_ASSIGN(
      state.self, reactor_->Watch(efd.get(), kReadable, [st = &state, magic = 0x5eedu](uint32_t) {
        for (int i = 0; i < 200; ++i) {
          st->others.push_back(MakeEventFd());
          auto id = st->reactor->Watch(st->others.back().get(), kReadable, [](uint32_t) {});
          if (id.ok()) st->added.push_back(*id);
        }
        st->seen = magic;  // reads the callback's own captures after the growth
        st->reactor->Unwatch(st->self);
      }));
  EXPECT_TRUE(RunUntil([&] { return state.seen != 0; }));
  EXPECT_EQ(state.seen, 0x5eedu);
  EXPECT_EQ(state.added.size(), 200u);
  for (WatchId id : state.added) reactor_->Unwatch(id);
  for (int i = 0; i < 3; ++i) VRPC_ASSERT_OK(reactor_->RunOnce(absl::Milliseconds(5)));
}

TEST_F(UringReactorTest, UnwatchArmedWatch) {
  UniqueFd efd = MakeEventFd();
  int calls = 0;
  VRPC_ASSERT_OK_AND_ASSIGN(WatchId id,
                            reactor_->Watch(efd.get(), kReadable, [&](uint32_t) { ++calls; }));
  VRPC_ASSERT_OK(reactor_->RunOnce(absl::Milliseconds(1)));
  reactor_->Unwatch(id);
  Signal(efd.get());
  for (int i = 0; i < 5; ++i) VRPC_ASSERT_OK(reactor_->RunOnce(absl::Milliseconds(5)));
  EXPECT_EQ(calls, 0);
}

TEST_F(UringReactorTest, SocketReadableAndHangup) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::vector<uint32_t> seen;
  WatchId id = 0;
  auto watch = reactor_->Watch(a.get(), kReadable, [&](uint32_t revents) {
    char buf[16];
    while (::read(a.get(), buf, sizeof(buf)) > 0) {
    }
    seen.push_back(revents);
    if (revents & POLLHUP) reactor_->Unwatch(id);
  });
  ASSERT_THAT(watch, IsOk());
  id = *watch;
  ASSERT_EQ(::write(b.get(), "x", 1), 1);
  EXPECT_TRUE(RunUntil([&] { return seen.size() == 1; }));
  b.Reset();
  EXPECT_TRUE(RunUntil([&] { return !seen.empty() && (seen.back() & POLLHUP); }));
}

TEST_F(UringReactorTest, TimersFireInOrderAndCancel) {
  std::vector<int> fired;
  const absl::Time now = reactor_->Now();
  reactor_->RunAt(now + absl::Milliseconds(30), [&] { fired.push_back(3); });
  reactor_->RunAt(now + absl::Milliseconds(10), [&] { fired.push_back(1); });
  TimerId cancelled = reactor_->RunAt(now + absl::Milliseconds(20), [&] { fired.push_back(2); });
  reactor_->CancelTimer(cancelled);
  EXPECT_TRUE(RunUntil([&] { return fired.size() == 2; }));
  EXPECT_THAT(fired, ElementsAre(1, 3));
  EXPECT_GE(reactor_->Now(), now + absl::Milliseconds(30));
}

TEST_F(UringReactorTest, PostAndStopFromAnotherThread) {
  std::atomic<int> posted{0};
  std::thread other([&] {
    for (int i = 0; i < 100; ++i) reactor_->Post([&] { posted.fetch_add(1); });
    reactor_->Post([&] { reactor_->Stop(); });
  });
  VRPC_EXPECT_OK(reactor_->Run());
  other.join();
  EXPECT_EQ(posted.load(), 100);
}

TEST_F(UringReactorTest, PostFromAnotherThreadWakesABlockedWait) {
  // The loop is blocked in a wait (up to the reactor's 1 s cap) when the
  // other thread posts: the post must end the wait, not the timeout.
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reactor_->Post([&] { ran = true; });
  });
  const absl::Time start = absl::Now();
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::Seconds(10)));
  while (!ran.load() && absl::Now() - start < absl::Seconds(5)) {
    VRPC_EXPECT_OK(reactor_->RunOnce(absl::Seconds(10)));
  }
  other.join();
  EXPECT_TRUE(ran.load());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(800)) << "woken by the timeout, not the post";
}

TEST_F(UringReactorTest, InLoopOnlyInsideItsOwnCallbacks) {
  EXPECT_FALSE(reactor_->InLoop());
  auto other = UringReactor::Create();
  ASSERT_THAT(other, IsOk());
  bool inside = false, other_inside = true;
  reactor_->Post([&] {
    inside = reactor_->InLoop();
    other_inside = (*other)->InLoop();
  });
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::ZeroDuration()));
  EXPECT_TRUE(inside);
  EXPECT_FALSE(other_inside);
  EXPECT_FALSE(reactor_->InLoop());
  // Another thread, while the loop runs: not in the loop.
  std::atomic<int> from_thread{-1};
  std::thread t([&] {
    from_thread = reactor_->InLoop() ? 1 : 0;
    reactor_->Post([&] { reactor_->Stop(); });
  });
  VRPC_EXPECT_OK(reactor_->Run());
  t.join();
  EXPECT_EQ(from_thread.load(), 0);
}

TEST_F(UringReactorTest, CallbacksSeeTheTimeTheirTurnStarted) {
  absl::Time first = absl::InfinitePast(), later = absl::InfinitePast();
  absl::Time next_turn = absl::InfinitePast();
  const absl::Time before = absl::Now();
  reactor_->Post([&] {
    first = reactor_->Now();
    absl::SleepFor(absl::Milliseconds(5));
    later = reactor_->Now();
    reactor_->Post([&] { next_turn = reactor_->Now(); });
  });
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::ZeroDuration()));
  EXPECT_GE(first, before);
  EXPECT_EQ(later, first);  // same turn, same time
  // Off the loop the clock is read each time.
  EXPECT_GE(reactor_->Now(), first + absl::Milliseconds(5));
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::ZeroDuration()));
  EXPECT_GE(next_turn, first + absl::Milliseconds(5));
}

TEST_F(UringReactorTest, PollersRunEveryTurnWithoutSleeping) {
  int a = 0, b = 0, added = 0;
  PollerId added_id = 0;
  PollerId b_id = 0;
  const PollerId a_id = reactor_->AddPoller([&] {
    ++a;
    if (a == 2) {  // adds a poller: it first runs next turn
      added_id = reactor_->AddPoller([&] { ++added; });
      EXPECT_EQ(added, 0);
    }
    if (a == 3) reactor_->RemovePoller(b_id);  // another one, mid-pass
  });
  b_id = reactor_->AddPoller([&] { ++b; });
  const absl::Time start = absl::Now();
  for (int i = 0; i < 4; ++i) VRPC_EXPECT_OK(reactor_->RunOnce(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "a turn with pollers slept";
  EXPECT_EQ(a, 4);
  EXPECT_EQ(b, 2);      // removed during the third pass, before its turn
  EXPECT_EQ(added, 2);  // turns 3 and 4
  // A poller removing itself while it runs.
  PollerId self = 0;
  int once = 0;
  self = reactor_->AddPoller([&] {
    ++once;
    reactor_->RemovePoller(self);
  });
  reactor_->RemovePoller(a_id);
  reactor_->RemovePoller(added_id);
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::ZeroDuration()));
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(once, 1);
  EXPECT_EQ(a, 4);
  // No pollers left: the loop waits again (here: for a timer).
  const absl::Time waited = absl::Now();
  bool fired = false;
  reactor_->RunAfter(absl::Milliseconds(20), [&] { fired = true; });
  while (!fired) VRPC_EXPECT_OK(reactor_->RunOnce(absl::Seconds(1)));
  EXPECT_GE(absl::Now() - waited, absl::Milliseconds(20));
}

TEST_F(UringReactorTest, PostsFromCallbacksRunNextTurnInOrderWithoutWaiting) {
  std::vector<int> ran;
  reactor_->Post([&] {
    reactor_->Post([&] { ran.push_back(1); });
    reactor_->Post([&] {
      ran.push_back(2);
      reactor_->Post([&] { ran.push_back(3); });
    });
  });
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::ZeroDuration()));
  EXPECT_TRUE(ran.empty());  // posted during the turn: the next one
  const absl::Time start = absl::Now();
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::Seconds(10)));  // work is queued: no wait
  VRPC_EXPECT_OK(reactor_->RunOnce(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(ran, ElementsAre(1, 2, 3));
}

TEST_F(UringReactorTest, StopBeforeRunReturnsAtOnce) {
  reactor_->Stop();
  VRPC_EXPECT_OK(reactor_->Run());
}

TEST_F(UringReactorTest, ManyWatches) {
  std::vector<UniqueFd> fds;
  int calls = 0;
  for (int i = 0; i < 500; ++i) {
    fds.push_back(MakeEventFd());
    const int fd = fds.back().get();
    VRPC_ASSERT_OK(reactor_->Watch(fd, kReadable, [&calls, fd](uint32_t) {
                     uint64_t v;
                     (void)!::read(fd, &v, sizeof(v));
                     ++calls;
                   }).status());
  }
  for (auto& fd : fds) Signal(fd.get());
  EXPECT_TRUE(RunUntil([&] { return calls == 500; }));
}

TEST_F(UringReactorTest, RejectsBadWatch) {
  EXPECT_THAT(reactor_->Watch(-1, kReadable, [](uint32_t) {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(reactor_->Watch(0, 0, [](uint32_t) {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace io
}  // namespace vrpc
