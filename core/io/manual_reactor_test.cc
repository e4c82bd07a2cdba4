#include "core/io/manual_reactor.h"

#include <sys/eventfd.h>
#include <unistd.h>

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

TEST(ManualReactorTest, TimeOnlyMovesWhenAdvanced) {
  ManualReactor r;
  std::vector<absl::Duration> fired;
  const absl::Time t0 = r.Now();
  r.RunAfter(absl::Seconds(2), [&] { fired.push_back(r.Now() - t0); });
  r.RunAfter(absl::Seconds(1), [&] {
    fired.push_back(r.Now() - t0);
    r.RunAfter(absl::Milliseconds(500), [&] { fired.push_back(r.Now() - t0); });
  });
  r.RunUntilIdle();
  EXPECT_TRUE(fired.empty());
  r.AdvanceTime(absl::Milliseconds(1999));
  EXPECT_THAT(fired, ElementsAre(absl::Seconds(1), absl::Milliseconds(1500)));
  r.AdvanceTime(absl::Milliseconds(1));
  EXPECT_THAT(fired, ElementsAre(absl::Seconds(1), absl::Milliseconds(1500), absl::Seconds(2)));
  EXPECT_EQ(r.Now(), t0 + absl::Seconds(2));
}

TEST(ManualReactorTest, InLoopOnlyInsideItsOwnCallbacks) {
  ManualReactor r, other;
  EXPECT_FALSE(r.InLoop());
  bool posted = false, timer = false, other_inside = true;
  r.Post([&] {
    posted = r.InLoop();
    other_inside = other.InLoop();
  });
  r.RunAfter(absl::Seconds(1), [&] { timer = r.InLoop(); });
  r.AdvanceTime(absl::Seconds(2));
  EXPECT_TRUE(posted);
  EXPECT_TRUE(timer);
  EXPECT_FALSE(other_inside);
  EXPECT_FALSE(r.InLoop());
}

TEST(ManualReactorTest, CancelledTimerDoesNotFire) {
  ManualReactor r;
  bool fired = false;
  TimerId id = r.RunAfter(absl::Seconds(1), [&] { fired = true; });
  r.CancelTimer(id);
  r.AdvanceTime(absl::Seconds(5));
  EXPECT_FALSE(fired);
}

TEST(ManualReactorTest, RealFdsWithFakeTime) {
  ManualReactor r;
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  int calls = 0;
  VRPC_ASSERT_OK(r.Watch(efd.get(), kReadable, [&](uint32_t) {
                   uint64_t v;
                   ASSERT_EQ(::read(efd.get(), &v, sizeof(v)), 8);
                   ++calls;
                 }).status());
  EXPECT_EQ(r.RunUntilIdle(), 0u);
  const uint64_t one = 1;
  ASSERT_EQ(::write(efd.get(), &one, 8), 8);
  EXPECT_EQ(r.RunUntilIdle(), 1u);
  EXPECT_EQ(calls, 1);
}

TEST(ManualReactorTest, RunUntilIdleIsBoundedForAFdThatStaysReady) {
  ManualReactor r;
  UniqueFd efd(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK));
  int calls = 0;
  VRPC_ASSERT_OK(r.Watch(efd.get(), kReadable, [&](uint32_t) { ++calls; }).status());
  EXPECT_EQ(r.RunUntilIdle(50), 50u);
  EXPECT_EQ(calls, 50);
}

TEST(ManualReactorTest, UnwatchItselfFromItsCallback) {
  ManualReactor r;
  UniqueFd efd(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK));
  int calls = 0;
  WatchId id = 0;
  auto watch = r.Watch(efd.get(), kReadable, [&](uint32_t) {
    ++calls;
    r.Unwatch(id);
    ++calls;  // the closure is still alive here
  });
  ASSERT_THAT(watch, IsOk());
  id = *watch;
  r.RunUntilIdle();
  EXPECT_EQ(calls, 2);
}

TEST(ManualReactorTest, PollersRunOncePerRoundUntilRemoved) {
  ManualReactor reactor;
  int polls = 0;
  PollerId id = 0;
  id = reactor.AddPoller([&] {
    if (++polls == 5) reactor.RemovePoller(id);  // from inside itself
  });
  EXPECT_EQ(reactor.RunUntilIdle(100), 5u);  // one per round, then idle
  EXPECT_EQ(polls, 5);
  int other = 0;
  const PollerId keep = reactor.AddPoller([&] { ++other; });
  EXPECT_EQ(reactor.RunUntilIdle(3), 3u);  // a poller keeps it busy
  reactor.RemovePoller(keep);
  EXPECT_EQ(reactor.RunUntilIdle(3), 0u);
  EXPECT_EQ(other, 3);
}

TEST(ManualReactorTest, ScopedPollerRegistersOnceAndStopsWhenDestroyed) {
  ManualReactor reactor;
  int polls = 0;
  {
    ScopedPoller poller;
    EXPECT_FALSE(poller.active());
    poller.Start(reactor, [&] { ++polls; });
    poller.Start(reactor, [&] { polls += 100; });  // already registered: ignored
    EXPECT_TRUE(poller.active());
    EXPECT_EQ(reactor.RunUntilIdle(2), 2u);
    EXPECT_EQ(polls, 2);
  }
  EXPECT_EQ(reactor.RunUntilIdle(2), 0u);  // gone with its owner
  ScopedPoller self_stopping;
  self_stopping.Start(reactor, [&] {
    ++polls;
    self_stopping.Stop();  // from within the poller
  });
  EXPECT_EQ(reactor.RunUntilIdle(5), 1u);
  EXPECT_FALSE(self_stopping.active());
  EXPECT_EQ(polls, 3);
}

TEST(ManualReactorTest, PostFromAnotherThreadRunsOnRunUntilIdle) {
  ManualReactor r;
  int ran = 0;
  std::thread t([&] { r.Post([&] { ++ran; }); });
  t.join();
  EXPECT_EQ(ran, 0);
  r.RunUntilIdle();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace io
}  // namespace vrpc
