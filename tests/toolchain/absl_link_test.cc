// Links and runs the parts of Abseil that vrpc uses, through
// //third_party:absl (Debian's shared libabsl_*.so).

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/log_severity.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/debugging/stacktrace.h"
#include "absl/debugging/symbolize.h"
#include "absl/hash/hash.h"
#include "absl/numeric/int128.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError(absl::StrCat(x, " is odd"));
  return x / 2;
}

TEST(AbslLinkTest, StatusOr) {
  EXPECT_EQ(*Half(8), 4);
  absl::StatusOr<int> odd = Half(3);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().message(), "3 is odd");
  EXPECT_TRUE(absl::IsInvalidArgument(odd.status()));
}

TEST(AbslLinkTest, Strings) {
  EXPECT_EQ(absl::StrFormat("%s-%05d-%.2f", "x", 42, 1.5), "x-00042-1.50");
  EXPECT_EQ(absl::StrCat("a", 1, "b", 2.5), "a1b2.5");
  std::vector<std::string> parts = absl::StrSplit("a,b,,c", ',', absl::SkipEmpty());
  EXPECT_THAT(parts, ElementsAre("a", "b", "c"));
  EXPECT_EQ(absl::StrJoin(parts, "+"), "a+b+c");

  absl::Cord cord("hello ");
  cord.Append(std::string(4096, 'x'));
  EXPECT_EQ(cord.size(), 6u + 4096u);
  EXPECT_TRUE(cord.StartsWith("hello"));
}

TEST(AbslLinkTest, Containers) {
  absl::flat_hash_map<std::string, int> flat;
  for (int i = 0; i < 1000; ++i) flat[absl::StrCat("k", i)] = i;
  EXPECT_EQ(flat.size(), 1000u);
  EXPECT_EQ(flat.at("k999"), 999);

  absl::node_hash_map<int, std::string> node = {{1, "one"}, {2, "two"}};
  EXPECT_THAT(node, UnorderedElementsAre(Pair(1, "one"), Pair(2, "two")));
  EXPECT_NE(absl::HashOf(std::string("a")), absl::HashOf(std::string("b")));
}

TEST(AbslLinkTest, SynchronizationAndTime) {
  absl::Mutex mu;
  int counter = 0;
  absl::Notification done;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        absl::MutexLock lock(&mu);
        ++counter;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  done.Notify();
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(1)));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(counter, 4000);
  }

  absl::Time start = absl::Now();
  absl::SleepFor(absl::Milliseconds(2));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1));
  absl::Time epoch = absl::FromUnixSeconds(0);
  EXPECT_EQ(absl::FormatTime("%Y-%m-%d", epoch, absl::UTCTimeZone()),
            "1970-01-01");
  EXPECT_EQ(absl::FormatDuration(absl::Milliseconds(1500)), "1.5s");
}

TEST(AbslLinkTest, RandomAndNumeric) {
  absl::BitGen gen;
  for (int i = 0; i < 100; ++i) {
    int v = absl::Uniform(gen, 0, 10);
    EXPECT_GE(v, 0);
    EXPECT_LT(v, 10);
  }
  absl::uint128 big = absl::MakeUint128(1, 0);
  EXPECT_EQ(absl::Uint128High64(big * 2), 2u);
  EXPECT_EQ(absl::StrFormat("%d", absl::uint128(12345)), "12345");
}

TEST(AbslLinkTest, DebuggingAndLogSeverity) {
  void* frames[8];
  int depth = absl::GetStackTrace(frames, 8, 0);
  EXPECT_GT(depth, 0);
  char name[256];
  // Symbolize may legitimately fail (e.g. stripped binaries); only link it.
  (void)absl::Symbolize(frames[0], name, sizeof(name));
  EXPECT_EQ(absl::LogSeverityName(absl::LogSeverity::kWarning),
            std::string("WARNING"));
}

}  // namespace

int main(int argc, char** argv) {
  absl::InitializeSymbolizer(argv[0]);
  testing::InitGoogleMock(&argc, argv);
  return RUN_ALL_TESTS();
}
