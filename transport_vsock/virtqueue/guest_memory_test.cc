#include "transport_vsock/virtqueue/guest_memory.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"
#include "transport_vsock/virtqueue/testing/read_once_checker.h"

namespace vrpc {
namespace virtqueue {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::AccessLog;
using testing::FakeGuestMemory;
using testing::kDefaultEnd;
using testing::kHole;
using testing::kMiB;
using testing::kRegionA;
using testing::kRegionB;
using testing::kRegionC;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// Backing bytes for Create() tests that never dereference.
uint8_t g_backing[64];

TEST(GuestMemoryCreateTest, EmptyListMapsNothing) {
  VRPC_ASSERT_OK_AND_ASSIGN(GuestMemory m, GuestMemory::Create({}, nullptr));
  EXPECT_THAT(m.regions(), IsEmpty());
  EXPECT_THAT(m.Translate(0, 1), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(m.IsMapped(0, 1));
  EXPECT_THAT(GuestMemory().Translate(0, 1), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(GuestMemoryCreateTest, RejectsEmptyRegion) {
  EXPECT_THAT(GuestMemory::Create({{0x1000, 0, g_backing}}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestMemoryCreateTest, RejectsNullHostAddress) {
  EXPECT_THAT(GuestMemory::Create({{0x1000, 16, nullptr}}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestMemoryCreateTest, RejectsGuestRangeOverflow) {
  EXPECT_THAT(GuestMemory::Create({{kU64Max - 10, 20, g_backing}}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The exclusive end must be representable: [2^64 - 17, 2^64 - 1) is fine,
  // one more byte is not.
  EXPECT_THAT(GuestMemory::Create({{kU64Max - 16, 16, g_backing}}, nullptr), IsOk());
  EXPECT_THAT(GuestMemory::Create({{kU64Max - 16, 17, g_backing}}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestMemoryCreateTest, RejectsHostRangeOverflow) {
  uint8_t* near_top = reinterpret_cast<uint8_t*>(std::numeric_limits<uintptr_t>::max() - 100);
  EXPECT_THAT(GuestMemory::Create({{0, 200, near_top}}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestMemoryCreateTest, RejectsOverlappingGuestRanges) {
  EXPECT_THAT(GuestMemory::Create({{0x1000, 0x100, g_backing}, {0x10ff, 0x10, g_backing}},
                                  nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Overlap detected whatever the order given.
  EXPECT_THAT(GuestMemory::Create({{0x2000, 0x10, g_backing}, {0x1000, 0x1001, g_backing}},
                                  nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestMemoryCreateTest, AcceptsAdjacentAndUnsortedRegionsAndHostAliases) {
  VRPC_ASSERT_OK_AND_ASSIGN(
      GuestMemory m,
      GuestMemory::Create({{0x2000, 32, g_backing}, {0x1000, 32, g_backing + 32},
                           {0x1020, 16, g_backing}},
                          nullptr));
  ASSERT_EQ(m.regions().size(), 3u);
  EXPECT_EQ(m.regions()[0].guest_addr, 0x1000u);
  EXPECT_EQ(m.regions()[1].guest_addr, 0x1020u);
  EXPECT_EQ(m.regions()[2].guest_addr, 0x2000u);
}

class GuestMemoryTest : public ::testing::Test {
 protected:
  FakeGuestMemory fake_;
  const GuestMemory& mem_ = fake_.memory();
};

TEST_F(GuestMemoryTest, TranslatesRangesInsideOneRegion) {
  VRPC_ASSERT_OK_AND_ASSIGN(uint8_t * a, mem_.Translate(kRegionA + 0x10, 16));
  EXPECT_EQ(a, fake_.At(kRegionA) + 0x10);
  // Exactly up to the end of a region.
  EXPECT_THAT(mem_.Translate(kRegionA + kMiB - 16, 16), IsOk());
  EXPECT_THAT(mem_.Translate(kRegionA, kMiB), IsOk());
  EXPECT_THAT(mem_.Translate(kRegionC + kMiB - 1, 1), IsOk());
}

TEST_F(GuestMemoryTest, RejectsRangePastTheEndOfItsRegion) {
  EXPECT_THAT(mem_.Translate(kRegionA + kMiB - 16, 17),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(kRegionA, kMiB + 1), StatusIs(absl::StatusCode::kOutOfRange));
}

// HARDENING row 4: an address inside a hole.
TEST_F(GuestMemoryTest, RejectsAddressInHole) {
  EXPECT_THAT(mem_.Translate(kHole, 1), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(kHole + 0x1234, 16), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(kDefaultEnd, 1), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(mem_.IsMapped(kHole, 1));
}

// HARDENING row 4: a range straddling a hole.
TEST_F(GuestMemoryTest, RejectsRangeStraddlingHole) {
  EXPECT_THAT(mem_.Translate(kHole - 8, 16), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(kRegionB - 8, 16), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(mem_.IsMapped(kHole - 8, 16));
  EXPECT_FALSE(mem_.IsMapped(kRegionA, 3 * kMiB));
  bool called = false;
  EXPECT_THAT(mem_.ForEachSegment(kHole - 8, 16,
                                  [&](uint64_t, absl::Span<uint8_t>) { called = true; }),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(called) << "no segment may be handed out before the range is checked";
}

// HARDENING row 4: adjacent regions are separate host buffers; Translate
// refuses, ForEachSegment walks region by region.
TEST_F(GuestMemoryTest, RangeStraddlingAdjacentRegionsNeedsSegments) {
  EXPECT_THAT(mem_.Translate(kRegionC - 8, 16), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_TRUE(mem_.IsMapped(kRegionC - 8, 16));
  EXPECT_TRUE(mem_.IsMapped(kRegionB, 2 * kMiB));
  std::vector<std::pair<uint64_t, uint8_t*>> pieces;
  std::vector<size_t> sizes;
  VRPC_ASSERT_OK(mem_.ForEachSegment(kRegionC - 8, 16,
                                     [&](uint64_t g, absl::Span<uint8_t> host) {
                                       pieces.emplace_back(g, host.data());
                                       sizes.push_back(host.size());
                                     }));
  EXPECT_THAT(pieces, ElementsAre(Pair(kRegionC - 8, fake_.At(kRegionC - 8)),
                                  Pair(kRegionC, fake_.At(kRegionC))));
  EXPECT_THAT(sizes, ElementsAre(8u, 8u));
}

// HARDENING row 4: addr = UINT64_MAX - 8 (and friends) must not wrap.
TEST_F(GuestMemoryTest, RejectsRangesThatOverflow) {
  EXPECT_THAT(mem_.Translate(kU64Max - 8, 16), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(kU64Max - 8, 9), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(kU64Max, 1), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(16, kU64Max), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.Translate(0, kU64Max), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(mem_.IsMapped(kU64Max - 8, 16));
  EXPECT_FALSE(mem_.IsMapped(1, kU64Max));
  uint8_t buf[16];
  EXPECT_THAT(mem_.CopyFrom(kU64Max - 8, absl::MakeSpan(buf)),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(mem_.ForEachSegment(kRegionA + 8, kU64Max, [](uint64_t, absl::Span<uint8_t>) {}),
              StatusIs(absl::StatusCode::kOutOfRange));
}

// HARDENING row 4: len = 0. Translate has no byte to point at and refuses;
// the segment and copy APIs accept an empty range anywhere and touch nothing.
TEST_F(GuestMemoryTest, EmptyRanges) {
  EXPECT_THAT(mem_.Translate(kRegionA, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(mem_.Translate(kHole, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(mem_.Translate(kU64Max, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(mem_.IsMapped(kHole, 0));
  EXPECT_TRUE(mem_.IsMapped(kU64Max, 0));
  AccessLog log;
  const GuestMemory observed = mem_.WithObserver(&log);
  bool called = false;
  EXPECT_THAT(observed.ForEachSegment(kHole, 0,
                                      [&](uint64_t, absl::Span<uint8_t>) { called = true; }),
              IsOk());
  EXPECT_THAT(observed.CopyFrom(kU64Max, {}), IsOk());
  EXPECT_THAT(observed.CopyTo(kHole, {}), IsOk());
  EXPECT_FALSE(called);
  EXPECT_EQ(log.size(), 0u);
}

TEST_F(GuestMemoryTest, CopiesAcrossAdjacentRegions) {
  std::vector<uint8_t> in(64);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i + 1);
  AccessLog log;
  const GuestMemory observed = mem_.WithObserver(&log);
  VRPC_ASSERT_OK(observed.CopyTo(kRegionC - 20, in));
  std::vector<uint8_t> out(64);
  VRPC_ASSERT_OK(observed.CopyFrom(kRegionC - 20, absl::MakeSpan(out)));
  EXPECT_EQ(in, out);
  EXPECT_EQ(fake_.At(kRegionC - 20)[0], 1);
  EXPECT_EQ(fake_.At(kRegionC)[0], 21);
  // Two pieces each way, every byte once.
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log.writes(), 2u);
  EXPECT_EQ(log.reads(), 2u);
  EXPECT_EQ(log.accesses()[2].addr, kRegionC - 20);
  EXPECT_EQ(log.accesses()[2].len, 20u);
  EXPECT_EQ(log.accesses()[3].addr, kRegionC);
  EXPECT_EQ(log.accesses()[3].len, 44u);
}

TEST_F(GuestMemoryTest, FailedCopiesTouchNothing) {
  fake_.At(kHole - 4, 4)[0] = 0x55;
  uint8_t out[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  EXPECT_THAT(mem_.CopyFrom(kHole - 4, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kOutOfRange));
  for (uint8_t b : out) EXPECT_EQ(b, 9);
  const uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_THAT(mem_.CopyTo(kHole - 4, in), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(fake_.At(kHole - 4, 4)[0], 0x55);
}

TEST_F(GuestMemoryTest, ObserverIsPerCopy) {
  AccessLog log;
  const GuestMemory observed = mem_.WithObserver(&log);
  uint8_t b[4];
  VRPC_ASSERT_OK(mem_.CopyFrom(kRegionA, absl::MakeSpan(b)));
  EXPECT_EQ(log.size(), 0u);
  VRPC_ASSERT_OK(observed.CopyFrom(kRegionA, absl::MakeSpan(b)));
  EXPECT_EQ(log.size(), 1u);
  observed.ObserveWrite(kRegionB, 2);
  EXPECT_EQ(log.writes(), 1u);
  EXPECT_EQ(observed.observer(), &log);
  EXPECT_EQ(observed.WithObserver(nullptr).observer(), nullptr);
}

// The keepalive owns the mappings: copies of a GuestMemory keep it alive.
TEST(GuestMemoryLifetimeTest, CopiesShareTheKeepalive) {
  auto released = std::make_shared<bool>(false);
  std::vector<uint8_t> backing(128);
  std::shared_ptr<const void> keepalive(new int(0), [released](const void* p) {
    *released = true;
    delete static_cast<const int*>(p);
  });
  std::unique_ptr<GuestMemory> copy;
  {
    VRPC_ASSERT_OK_AND_ASSIGN(
        GuestMemory m, GuestMemory::Create({{0, backing.size(), backing.data()}},
                                           std::move(keepalive)));
    copy = std::make_unique<GuestMemory>(m);
    std::shared_ptr<const void> held = m.keepalive();
    EXPECT_NE(held, nullptr);
  }
  EXPECT_FALSE(*released);
  EXPECT_THAT(copy->Translate(0, 128), IsOk());
  copy.reset();
  EXPECT_TRUE(*released);
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc
