#include "transport_vsock/virtqueue/device_queue.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/virtqueue/broken_latch.h"
#include "transport_vsock/virtqueue/chain.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"
#include "transport_vsock/virtqueue/testing/raw_ring.h"
#include "transport_vsock/virtqueue/testing/read_once_checker.h"

namespace vrpc {
namespace virtqueue {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::AccessLog;
using testing::FakeGuestMemory;
using testing::kHole;
using testing::kMiB;
using testing::kRegionA;
using testing::kRegionB;
using testing::kRegionC;
using testing::RawRing;
using testing::RingLayout;

constexpr uint16_t W = kDescFlagWrite;

// ---------------------------------------------------------------------------
// Create: configuration from the front-end (HARDENING row 2)
// ---------------------------------------------------------------------------

class DeviceQueueCreateTest : public ::testing::Test {
 protected:
  absl::Status CreateWith(const DeviceQueueConfig& config) {
    return DeviceQueue::Create(fake_.memory(), config).status();
  }
  FakeGuestMemory fake_;
};

TEST_F(DeviceQueueCreateTest, QueueSizeMustBeAPowerOfTwoUpTo32768) {
  for (uint32_t size : {1u, 2u, 256u, 32768u}) {
    EXPECT_THAT(CreateWith(RingLayout::Packed(size).DeviceConfig()), IsOk()) << size;
  }
  for (uint32_t size : {0u, 3u, 100u, 65536u, 0x10000u + 256u, 0xffffffffu}) {
    DeviceQueueConfig c = RingLayout::Packed(256).DeviceConfig();
    c.size = size;
    EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kInvalidArgument)) << size;
  }
}

// SET_VRING_BASE carries a u32: any u16 is a valid free-running index,
// anything wider is rejected, never truncated (CVE-2020-10723 pattern).
TEST_F(DeviceQueueCreateTest, NextAvailIsCheckedAtFullWidth) {
  const RingLayout layout = RingLayout::Packed(16);
  for (uint32_t base : {0u, 16u, 17u, 0xffffu}) {
    EXPECT_THAT(CreateWith(layout.DeviceConfig(base)), IsOk()) << base;
  }
  for (uint32_t base : {0x10000u, 0x10000u + 3u, 0xffffffffu}) {
    EXPECT_THAT(CreateWith(layout.DeviceConfig(base)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << base;
  }
  DeviceQueueConfig c = layout.DeviceConfig();
  c.next_used = 0x10000;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(DeviceQueueCreateTest, PartsMustBeAligned) {
  const RingLayout layout = RingLayout::Packed(16, kRegionA + 0x100);
  DeviceQueueConfig c = layout.DeviceConfig();
  c.desc_addr += 8;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kInvalidArgument));
  c = layout.DeviceConfig();
  c.avail_addr += 1;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kInvalidArgument));
  c = layout.DeviceConfig();
  c.used_addr += 2;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(DeviceQueueCreateTest, PartsMustBeMappedInOneRegion) {
  DeviceQueueConfig c = RingLayout::Packed(16).DeviceConfig();
  c.desc_addr = kHole;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kOutOfRange));
  c = RingLayout::Packed(16).DeviceConfig();
  c.used_addr = kRegionB - 64;  // straddles the hole
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kOutOfRange));
  c = RingLayout::Packed(16).DeviceConfig();
  c.desc_addr = kRegionC - 128;  // straddles B|C: rings are never stitched
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kOutOfRange));
  c = RingLayout::Packed(16).DeviceConfig();
  c.avail_addr = 0xfffffffffffffff0ull;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kOutOfRange));
}

// The event fields exist only with EVENT_IDX; the extents follow.
TEST_F(DeviceQueueCreateTest, PartExtentsDependOnEventIdx) {
  DeviceQueueConfig c = RingLayout::Packed(16).DeviceConfig();
  c.avail_addr = kRegionA + kMiB - AvailRingBytes(16, false);
  c.event_idx = false;
  EXPECT_THAT(CreateWith(c), IsOk());
  c.event_idx = true;
  EXPECT_THAT(CreateWith(c), StatusIs(absl::StatusCode::kOutOfRange));
  c.avail_addr = kRegionA + kMiB - AvailRingBytes(16, true);
  EXPECT_THAT(CreateWith(c), IsOk());
}

TEST_F(DeviceQueueCreateTest, RefusesABrokenLatch) {
  auto latch = std::make_shared<BrokenLatch>();
  latch->Latch(absl::InvalidArgumentError("earlier"));
  EXPECT_THAT(DeviceQueue::Create(fake_.memory(), RingLayout::Packed(16).DeviceConfig(), latch),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(DeviceQueueCreateTest, ReadsNextUsedFromTheRingUnlessGiven) {
  const RingLayout layout = RingLayout::Packed(16);
  RawRing ring(&fake_, layout);
  ring.SetUsedIdx(1234);
  VRPC_ASSERT_OK_AND_ASSIGN(auto q, DeviceQueue::Create(fake_.memory(), layout.DeviceConfig(7)));
  EXPECT_EQ(q->used_idx(), 1234);
  EXPECT_EQ(q->last_avail_idx(), 7);
  DeviceQueueConfig c = layout.DeviceConfig(7);
  c.next_used = 9;
  VRPC_ASSERT_OK_AND_ASSIGN(q, DeviceQueue::Create(fake_.memory(), c));
  EXPECT_EQ(q->used_idx(), 9);
}

// ---------------------------------------------------------------------------
// Normal operation
// ---------------------------------------------------------------------------

class DeviceQueueTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kSize = 8;
  static constexpr uint64_t kData = kRegionA + 0x10000;

  void Init(bool event_idx, uint32_t next_avail = 0, std::optional<uint32_t> next_used = 0) {
    layout_ = RingLayout::Packed(kSize, kRegionA, event_idx);
    ring_ = std::make_unique<RawRing>(&fake_, layout_);
    DeviceQueueConfig c = layout_.DeviceConfig(next_avail);
    c.next_used = next_used;
    auto q = DeviceQueue::Create(fake_.memory().WithObserver(&log_), c, latch_);
    ASSERT_THAT(q, IsOk());
    q_ = *std::move(q);
    ring_->SetAvailIdx(static_cast<uint16_t>(next_avail));
  }

  // Makes head |h| available as a single writable descriptor of 64 bytes.
  void Offer(uint16_t h) {
    ring_->SetDesc(h, kData + 0x100 * h, 0x40, W);
    ring_->PushAvail(h);
  }

  uint16_t PopHead() {
    absl::StatusOr<std::optional<Chain>> c = q_->Pop();
    EXPECT_THAT(c, IsOk());
    if (!c.ok() || !c->has_value()) return 0xffff;
    return (*c)->head();
  }

  size_t ReadsAt(uint64_t addr) const {
    size_t n = 0;
    for (const testing::Access& a : log_.accesses()) {
      if (a.kind == testing::Access::Kind::kRead && a.addr == addr) ++n;
    }
    return n;
  }
  size_t WritesAt(uint64_t addr) const {
    size_t n = 0;
    for (const testing::Access& a : log_.accesses()) {
      if (a.kind == testing::Access::Kind::kWrite && a.addr == addr) ++n;
    }
    return n;
  }

  FakeGuestMemory fake_;
  RingLayout layout_;
  std::unique_ptr<RawRing> ring_;
  AccessLog log_;
  std::shared_ptr<BrokenLatch> latch_ = std::make_shared<BrokenLatch>();
  std::unique_ptr<DeviceQueue> q_;
};

TEST_F(DeviceQueueTest, EmptyRingPopsNothing) {
  Init(false);
  EXPECT_THAT(q_->Pop(), IsOkAndHolds(::testing::Eq(std::nullopt)));
  EXPECT_EQ(log_.reads(), 1u);  // avail.idx only
  EXPECT_EQ(q_->in_flight(), 0u);
}

// avail.idx is acquire-loaded only when the entries known so far are used up.
TEST_F(DeviceQueueTest, AvailIdxIsReadOncePerBatch) {
  Init(false);
  Offer(0);
  Offer(1);
  Offer(2);
  EXPECT_EQ(PopHead(), 0);
  EXPECT_EQ(PopHead(), 1);
  EXPECT_EQ(PopHead(), 2);
  EXPECT_EQ(ReadsAt(layout_.avail_addr + kAvailIdxOffset), 1u);
  EXPECT_THAT(q_->Pop(), IsOkAndHolds(::testing::Eq(std::nullopt)));
  EXPECT_EQ(ReadsAt(layout_.avail_addr + kAvailIdxOffset), 2u);
}

TEST_F(DeviceQueueTest, PushUsedPublishesElementThenIndex) {
  Init(false);
  Offer(5);
  ASSERT_EQ(PopHead(), 5);
  log_.Clear();
  VRPC_ASSERT_OK(q_->PushUsed(5, 17));
  EXPECT_EQ(ring_->used_idx(), 1);
  EXPECT_EQ(ring_->used_id(0), 5u);
  EXPECT_EQ(ring_->used_len(0), 17u);
  ASSERT_EQ(log_.size(), 2u);
  EXPECT_EQ(log_.accesses()[0].addr, layout_.used_addr + kUsedRingOffset);
  EXPECT_EQ(log_.accesses()[1].addr, layout_.used_addr + kUsedIdxOffset);
  EXPECT_EQ(q_->in_flight(), 0u);
  EXPECT_EQ(q_->stats().used_pushed, 1u);
}

TEST_F(DeviceQueueTest, PushUsedRejectsCallerBugsWithoutLatching) {
  Init(false);
  Offer(1);
  ASSERT_EQ(PopHead(), 1);
  log_.Clear();
  EXPECT_THAT(q_->PushUsed(1, 0x41), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("exceeds the 64 writable")));
  EXPECT_THAT(q_->PushUsed(2, 0), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("not in flight")));
  EXPECT_THAT(q_->PushUsed(kSize, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log_.size(), 0u);
  EXPECT_FALSE(q_->broken());
  VRPC_ASSERT_OK(q_->PushUsed(1, 0x40));
  EXPECT_THAT(q_->PushUsed(1, 0), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("not in flight")));
}

TEST_F(DeviceQueueTest, PushUsedBatchPublishesOnceAndIsAllOrNothing) {
  Init(false);
  for (uint16_t h : {3, 4, 6}) Offer(h);
  for (int i = 0; i < 3; ++i) PopHead();
  log_.Clear();
  // A repeated head, or one bad element, and nothing is written.
  EXPECT_THAT(q_->PushUsedBatch({{3, 1}, {4, 2}, {3, 3}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(q_->PushUsedBatch({{3, 1}, {4, 2000}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log_.size(), 0u);
  EXPECT_EQ(q_->in_flight(), 3u);
  VRPC_ASSERT_OK(q_->PushUsedBatch({{6, 1}, {3, 2}, {4, 3}}));
  EXPECT_EQ(WritesAt(layout_.used_addr + kUsedIdxOffset), 1u);
  EXPECT_EQ(ring_->used_idx(), 3);
  EXPECT_EQ(ring_->used_id(0), 6u);
  EXPECT_EQ(ring_->used_id(1), 3u);
  EXPECT_EQ(ring_->used_id(2), 4u);
  EXPECT_EQ(ring_->used_len(2), 3u);
  EXPECT_EQ(q_->in_flight(), 0u);
  VRPC_EXPECT_OK(q_->PushUsedBatch({}));
}

TEST_F(DeviceQueueTest, IndicesWrapAtU16) {
  Init(false, /*next_avail=*/0xfffe, /*next_used=*/0xfffe);
  for (int round = 0; round < 4; ++round) {
    Offer(static_cast<uint16_t>(round));
    ASSERT_EQ(PopHead(), round);
    VRPC_ASSERT_OK(q_->PushUsed(static_cast<uint16_t>(round), 1));
  }
  EXPECT_EQ(q_->last_avail_idx(), 0x0002);  // GET_VRING_BASE
  EXPECT_EQ(q_->used_idx(), 0x0002);
  EXPECT_EQ(ring_->used_idx(), 0x0002);
  EXPECT_EQ(ring_->used_id(0xffff & (kSize - 1)), 1u);
}

// Without EVENT_IDX the driver's avail.flags NO_INTERRUPT decides.
TEST_F(DeviceQueueTest, ShouldNotifyFollowsNoInterruptWithoutEventIdx) {
  Init(false);
  EXPECT_FALSE(q_->ShouldNotify()) << "nothing published";
  Offer(0);
  PopHead();
  VRPC_ASSERT_OK(q_->PushUsed(0, 0));
  EXPECT_TRUE(q_->ShouldNotify());
  EXPECT_FALSE(q_->ShouldNotify()) << "nothing new since";
  ring_->SetAvailFlags(kAvailFlagNoInterrupt);
  Offer(1);
  PopHead();
  VRPC_ASSERT_OK(q_->PushUsed(1, 0));
  EXPECT_FALSE(q_->ShouldNotify());
}

// With EVENT_IDX: notify iff used.idx crossed avail.used_event.
TEST_F(DeviceQueueTest, ShouldNotifyUsesUsedEvent) {
  Init(true);
  ring_->SetAvailFlags(kAvailFlagNoInterrupt);  // ignored with EVENT_IDX
  ring_->SetUsedEvent(0);                       // "tell me when entry 0 is used"
  for (uint16_t h = 0; h < 4; ++h) Offer(h);
  for (int i = 0; i < 4; ++i) PopHead();
  VRPC_ASSERT_OK(q_->PushUsed(0, 0));  // used 0 -> 1 crosses 0
  EXPECT_TRUE(q_->ShouldNotify());
  VRPC_ASSERT_OK(q_->PushUsed(1, 0));  // 1 -> 2: event still 0
  EXPECT_FALSE(q_->ShouldNotify());
  ring_->SetUsedEvent(3);              // driver wants to hear after entry 3
  VRPC_ASSERT_OK(q_->PushUsed(2, 0));  // 2 -> 3
  EXPECT_FALSE(q_->ShouldNotify());
  VRPC_ASSERT_OK(q_->PushUsed(3, 0));  // 3 -> 4 crosses 3
  EXPECT_TRUE(q_->ShouldNotify());
  EXPECT_EQ(ReadsAt(layout_.avail_addr + UsedEventOffset(kSize)), 4u);
  EXPECT_EQ(ReadsAt(layout_.avail_addr + kAvailFlagsOffset), 0u);
}

// Batched pushes: one decision covers every entry since the last one.
TEST_F(DeviceQueueTest, ShouldNotifyAcrossU16WrapWithBatches) {
  Init(true, /*next_avail=*/0xfffc, /*next_used=*/0xfffc);
  for (uint16_t h = 0; h < 6; ++h) Offer(h);
  for (int i = 0; i < 6; ++i) PopHead();
  ring_->SetUsedEvent(0xffff);
  VRPC_ASSERT_OK(q_->PushUsedBatch({{0, 0}, {1, 0}}));  // 0xfffc -> 0xfffe
  EXPECT_FALSE(q_->ShouldNotify());
  VRPC_ASSERT_OK(q_->PushUsedBatch({{2, 0}, {3, 0}, {4, 0}}));  // 0xfffe -> 0x0001
  EXPECT_TRUE(q_->ShouldNotify());
  ring_->SetUsedEvent(0x0001);
  VRPC_ASSERT_OK(q_->PushUsed(5, 0));  // 0x0001 -> 0x0002 crosses 1
  EXPECT_TRUE(q_->ShouldNotify());
}

// EVENT_IDX suppression on the device side: avail_event = next index.
TEST_F(DeviceQueueTest, EnableNotificationsWritesAvailEventAndRechecks) {
  Init(true);
  EXPECT_THAT(q_->EnableNotifications(), IsOkAndHolds(false));
  EXPECT_EQ(ring_->avail_event(), 0);
  Offer(0);
  Offer(1);
  VRPC_ASSERT_OK(q_->DisableNotifications());  // nothing to write
  EXPECT_EQ(PopHead(), 0);
  EXPECT_EQ(ring_->avail_event(), 0) << "disabled: avail_event stays behind";
  Offer(2);  // raced in before we re-enable
  EXPECT_THAT(q_->EnableNotifications(), IsOkAndHolds(true));
  EXPECT_EQ(ring_->avail_event(), 1);
  EXPECT_EQ(PopHead(), 1);
  EXPECT_EQ(PopHead(), 2);
  EXPECT_THAT(q_->EnableNotifications(), IsOkAndHolds(false));
  EXPECT_EQ(ring_->avail_event(), 3);
  EXPECT_EQ(ring_->used_flags(), 0);
}

TEST_F(DeviceQueueTest, NotificationsUseUsedFlagsWithoutEventIdx) {
  Init(false);
  VRPC_ASSERT_OK(q_->DisableNotifications());
  EXPECT_EQ(ring_->used_flags(), kUsedFlagNoNotify);
  EXPECT_THAT(q_->EnableNotifications(), IsOkAndHolds(false));
  EXPECT_EQ(ring_->used_flags(), 0);
  Offer(0);
  EXPECT_THAT(q_->EnableNotifications(), IsOkAndHolds(true));
}

TEST_F(DeviceQueueTest, ChainByteAccessThroughSegments) {
  Init(false);
  ring_->SetDesc(0, kRegionC - 4, 8, kDescFlagNext, 1);
  ring_->SetDesc(1, kRegionB, 16, W | kDescFlagNext, 2);
  ring_->SetDesc(2, kRegionC - 2, 4, W);
  ring_->PushAvail(0);
  VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Chain> c, q_->Pop());
  ASSERT_TRUE(c.has_value());
  std::vector<std::pair<uint64_t, size_t>> pieces;
  VRPC_ASSERT_OK(q_->ForEachReadableSegment(*c, 2, 6, [&](uint64_t g, absl::Span<uint8_t> h) {
    pieces.emplace_back(g, h.size());
  }));
  EXPECT_THAT(pieces, ElementsAre(std::make_pair(kRegionC - 2, size_t{2}),
                                  std::make_pair(kRegionC, size_t{4})));
  pieces.clear();
  VRPC_ASSERT_OK(q_->ForEachWritableSegment(*c, 14, 6, [&](uint64_t g, absl::Span<uint8_t> h) {
    pieces.emplace_back(g, h.size());
  }));
  EXPECT_THAT(pieces, ElementsAre(std::make_pair(kRegionB + 14, size_t{2}),
                                  std::make_pair(kRegionC - 2, size_t{2}),
                                  std::make_pair(kRegionC, size_t{2})));
  EXPECT_THAT(q_->ForEachWritableSegment(*c, 14, 7, [](uint64_t, absl::Span<uint8_t>) {}),
              StatusIs(absl::StatusCode::kOutOfRange));
  const std::vector<uint8_t> data(20, 0x5a);
  VRPC_ASSERT_OK(q_->WriteChain(*c, 0, data));
  EXPECT_EQ(fake_.At(kRegionC + 1)[0], 0x5a);
  EXPECT_THAT(q_->WriteChain(*c, 1, data), StatusIs(absl::StatusCode::kOutOfRange));
}

// A violation on one queue stops every queue sharing the latch; a device
// reset (Reset on each queue) brings them back.
TEST_F(DeviceQueueTest, SharedLatchStopsSiblingQueues) {
  Init(false);
  const RingLayout other = RingLayout::Packed(kSize, kRegionB);
  VRPC_ASSERT_OK_AND_ASSIGN(auto sibling,
                            DeviceQueue::Create(fake_.memory(), other.DeviceConfig(), latch_));
  ring_->PushAvail(kSize);  // bad head on the first queue
  EXPECT_THAT(q_->Pop(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(sibling->broken());
  EXPECT_THAT(sibling->Pop(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("head 8")));
  q_->Reset();
  sibling->Reset();
  EXPECT_THAT(sibling->Pop(), IsOkAndHolds(::testing::Eq(std::nullopt)));
}

TEST_F(DeviceQueueTest, ResetForgetsInFlightChains) {
  Init(false, /*next_avail=*/3, /*next_used=*/3);
  Offer(2);
  ASSERT_EQ(PopHead(), 2);
  EXPECT_EQ(q_->last_avail_idx(), 4);
  q_->Reset();
  EXPECT_EQ(q_->last_avail_idx(), 3);
  EXPECT_EQ(q_->used_idx(), 3);
  EXPECT_EQ(q_->in_flight(), 0u);
  EXPECT_THAT(q_->PushUsed(2, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(PopHead(), 2);  // the same entry, consumed again
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc
