#include "transport_vsock/virtqueue/broken_latch.h"

#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace virtqueue {
namespace {

using ::testing::HasSubstr;

TEST(BrokenLatchTest, StartsUnbroken) {
  BrokenLatch latch;
  EXPECT_FALSE(latch.IsBroken());
  EXPECT_THAT(latch.status(), IsOk());
  EXPECT_EQ(latch.violation_count(), 0u);
}

TEST(BrokenLatchTest, KeepsTheFirstReasonAndCountsAll) {
  BrokenLatch latch;
  latch.Latch(absl::InvalidArgumentError("first"));
  latch.Latch(absl::OutOfRangeError("second"));
  EXPECT_TRUE(latch.IsBroken());
  EXPECT_THAT(latch.status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("first")));
  EXPECT_THAT(latch.BrokenError(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("first")));
  EXPECT_EQ(latch.violation_count(), 2u);
}

TEST(BrokenLatchTest, ClearUnbreaksButKeepsTheCount) {
  BrokenLatch latch;
  latch.Latch(absl::InvalidArgumentError("x"));
  latch.Clear();
  EXPECT_FALSE(latch.IsBroken());
  EXPECT_THAT(latch.status(), IsOk());
  EXPECT_EQ(latch.violation_count(), 1u);
  latch.Latch(absl::DataLossError("y"));
  EXPECT_THAT(latch.status(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(BrokenLatchTest, ConcurrentLatchesAreAllCounted) {
  BrokenLatch latch;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&latch] {
      for (int i = 0; i < 100; ++i) latch.Latch(absl::InternalError("race"));
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(latch.IsBroken());
  EXPECT_EQ(latch.violation_count(), 400u);
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc
