#include "core/rpc/backoff.h"

#include "gtest/gtest.h"

namespace vrpc {
namespace rpc {
namespace {

TEST(BackoffTest, GrowsByTheMultiplierWithinJitterUpToTheCap) {
  Backoff b(BackoffPolicy{});
  double nominal = 1.0;
  for (int i = 0; i < 30; ++i) {
    const double d = absl::ToDoubleSeconds(b.Next());
    EXPECT_GE(d, nominal * 0.8 - 1e-9) << i;
    EXPECT_LE(d, nominal * 1.2 + 1e-9) << i;
    nominal = std::min(nominal * 1.6, 120.0);
  }
}

TEST(BackoffTest, JitterActuallyVariesAndResetStartsOver) {
  Backoff b(BackoffPolicy{});
  const absl::Duration first = b.Next();
  bool varied = false;
  Backoff c(BackoffPolicy{});
  for (int i = 0; i < 10; ++i) {
    c.Reset();
    varied |= c.Next() != first;
  }
  EXPECT_TRUE(varied);
  b.Next();
  b.Next();
  b.Reset();
  EXPECT_LE(b.Next(), absl::Milliseconds(1200));
}

TEST(BackoffTest, ConfigurableAndNoJitter) {
  BackoffPolicy p;
  p.initial = absl::Milliseconds(10);
  p.multiplier = 2;
  p.jitter = 0;
  p.max = absl::Milliseconds(50);
  Backoff b(p);
  EXPECT_EQ(b.Next(), absl::Milliseconds(10));
  EXPECT_EQ(b.Next(), absl::Milliseconds(20));
  EXPECT_EQ(b.Next(), absl::Milliseconds(40));
  EXPECT_EQ(b.Next(), absl::Milliseconds(50));
  EXPECT_EQ(b.Next(), absl::Milliseconds(50));
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
