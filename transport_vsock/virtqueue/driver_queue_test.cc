#include "transport_vsock/virtqueue/driver_queue.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/virtqueue/broken_latch.h"
#include "transport_vsock/virtqueue/chain.h"
#include "transport_vsock/virtqueue/device_queue.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"
#include "transport_vsock/virtqueue/testing/raw_ring.h"
#include "transport_vsock/virtqueue/testing/read_once_checker.h"

namespace vrpc {
namespace virtqueue {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;
using testing::FakeGuestMemory;
using testing::kHole;
using testing::kRegionA;
using testing::kRegionB;
using testing::kRegionC;
using testing::RawRing;
using testing::ReadOnceChecker;
using testing::RingLayout;

MATCHER_P3(IsUsed, head, len, token, "") {
  return arg.head == head && arg.len == len && arg.token == token;
}

class DriverQueueTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kSize = 8;
  static constexpr uint64_t kBuf = kRegionB;

  void Init(bool event_idx) {
    layout_ = RingLayout::Packed(kSize, kRegionA, event_idx);
    ring_ = std::make_unique<RawRing>(&fake_, layout_);
    auto d = DriverQueue::Create(fake_.memory().WithObserver(&checker_), layout_.DriverConfig());
    ASSERT_THAT(d, IsOk());
    driver_ = *std::move(d);
    auto q = DeviceQueue::Create(fake_.memory(), layout_.DeviceConfig());
    ASSERT_THAT(q, IsOk());
    device_ = *std::move(q);
  }

  // Adds one chain: 16 readable bytes and |writable| writable bytes.
  uint16_t AddChain(uint64_t token, uint32_t writable = 32) {
    const uint64_t buf = kBuf + 0x100 * token;
    const DriverBuffer r[] = {{buf, 16}};
    const DriverBuffer w[] = {{buf + 0x40, writable}};
    absl::StatusOr<uint16_t> head = driver_->Add(r, w, token);
    EXPECT_THAT(head, IsOk());
    return head.ok() ? *head : 0xffff;
  }

  // The device half: pops one chain and completes it with |len|.
  void DeviceCompletesOne(uint32_t len) {
    absl::StatusOr<std::optional<Chain>> c = device_->Pop();
    ASSERT_THAT(c, IsOk());
    ASSERT_TRUE(c->has_value());
    VRPC_ASSERT_OK(device_->PushUsed((*c)->head(), len));
  }

  // After a device violation, the driver touches nothing.
  void ExpectInert() {
    const uint64_t before = checker_.accesses();
    const DriverBuffer r[] = {{kBuf, 16}};
    EXPECT_THAT(driver_->Add(r, {}, 1), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(driver_->PublishAvail(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(driver_->EnableInterrupts(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(driver_->DisableInterrupts(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(checker_.accesses(), before);
  }

  FakeGuestMemory fake_;
  RingLayout layout_;
  std::unique_ptr<RawRing> ring_;
  ReadOnceChecker checker_;
  std::unique_ptr<DriverQueue> driver_;
  std::unique_ptr<DeviceQueue> device_;
};

TEST_F(DriverQueueTest, CreateValidatesAndZeroesTheRing) {
  const RingLayout layout = RingLayout::Packed(16);
  fake_.Fill(0xee);
  VRPC_ASSERT_OK_AND_ASSIGN(auto d, DriverQueue::Create(fake_.memory(), layout.DriverConfig()));
  RawRing ring(&fake_, layout);
  EXPECT_EQ(ring.avail_idx(), 0);
  EXPECT_EQ(ring.used_idx(), 0);
  EXPECT_EQ(ring.GetDesc(15).addr, 0u);
  EXPECT_EQ(d->free_descriptors(), 16u);

  DriverQueueConfig c = layout.DriverConfig();
  c.size = 12;
  EXPECT_THAT(DriverQueue::Create(fake_.memory(), c),
              StatusIs(absl::StatusCode::kInvalidArgument));
  c = layout.DriverConfig();
  c.used_addr = kHole;
  EXPECT_THAT(DriverQueue::Create(fake_.memory(), c), StatusIs(absl::StatusCode::kOutOfRange));
  c = layout.DriverConfig();
  c.desc_addr += 4;
  EXPECT_THAT(DriverQueue::Create(fake_.memory(), c),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(DriverQueueTest, AddRejectsBadBuffers) {
  Init(false);
  const DriverBuffer zero[] = {{kBuf, 0}};
  const DriverBuffer hole[] = {{kHole, 16}};
  const DriverBuffer ok[] = {{kBuf, 16}};
  EXPECT_THAT(driver_->Add({}, {}, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(driver_->Add(zero, {}, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(driver_->Add(ok, hole, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(driver_->free_descriptors(), kSize);
  EXPECT_FALSE(driver_->broken()) << "our own bad arguments are not device violations";
}

TEST_F(DriverQueueTest, RunsOutOfDescriptorsAndRecyclesThem) {
  Init(false);
  const DriverBuffer three[] = {{kBuf, 1}, {kBuf + 1, 1}, {kBuf + 2, 1}};
  VRPC_ASSERT_OK(driver_->Add(three, {}, 1).status());
  VRPC_ASSERT_OK(driver_->Add(three, {}, 2).status());
  EXPECT_EQ(driver_->free_descriptors(), 2u);
  EXPECT_THAT(driver_->Add(three, {}, 3), StatusIs(absl::StatusCode::kResourceExhausted));
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  DeviceCompletesOne(0);
  EXPECT_THAT(driver_->PopUsed(), IsOkAndHolds(Optional(IsUsed(0, 0u, 1u))));
  EXPECT_EQ(driver_->free_descriptors(), 5u);
  VRPC_ASSERT_OK(driver_->Add(three, {}, 3).status());
  EXPECT_EQ(driver_->outstanding(), 2u);
}

// Used-ring publication by the DeviceQueue is visible to the DriverQueue,
// chain contents arrive intact, and both sides wrap their u16 indices.
TEST_F(DriverQueueTest, RoundTripWithDeviceQueueAcrossIndexWrap) {
  Init(false);
  constexpr int kRounds = 70000;
  for (int i = 0; i < kRounds; ++i) {
    checker_.BeginScope();
    const uint64_t token = static_cast<uint64_t>(i % 4);
    const uint64_t buf = kBuf + 0x100 * token;
    const uint8_t request[4] = {static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8), 1, 2};
    fake_.Write(buf, request);
    const DriverBuffer r[] = {{buf, 4}};
    const DriverBuffer w[] = {{buf + 0x40, 8}, {kRegionC - 4, 8}};
    VRPC_ASSERT_OK(driver_->Add(r, w, token).status());
    VRPC_ASSERT_OK(driver_->PublishAvail().status());

    VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Chain> c, device_->Pop());
    ASSERT_TRUE(c.has_value());
    ASSERT_EQ(c->readable_bytes(), 4u);
    ASSERT_EQ(c->writable_bytes(), 16u);
    uint8_t got[4];
    VRPC_ASSERT_OK(device_->ReadChain(*c, 0, absl::MakeSpan(got)));
    ASSERT_EQ(got[0], static_cast<uint8_t>(i));
    VRPC_ASSERT_OK(device_->WriteChain(*c, 6, got));  // crosses into the 2nd buffer
    VRPC_ASSERT_OK(device_->PushUsed(c->head(), 10));

    VRPC_ASSERT_OK_AND_ASSIGN(std::optional<UsedBuffer> used, driver_->PopUsed());
    ASSERT_TRUE(used.has_value());
    ASSERT_EQ(used->token, token);
    ASSERT_EQ(used->len, 10u);
    ASSERT_EQ(fake_.At(buf + 0x46)[0], static_cast<uint8_t>(i));
    ASSERT_EQ(fake_.At(kRegionC - 4, 2)[1], 2);
  }
  EXPECT_EQ(driver_->last_used_idx(), static_cast<uint16_t>(kRounds));
  EXPECT_EQ(device_->last_avail_idx(), static_cast<uint16_t>(kRounds));
  EXPECT_EQ(driver_->free_descriptors(), kSize);
  EXPECT_FALSE(driver_->broken());
  EXPECT_FALSE(device_->broken());
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// Kick suppression without EVENT_IDX: the device's used.flags NO_NOTIFY.
TEST_F(DriverQueueTest, KickDecisionFollowsUsedFlags) {
  Init(false);
  AddChain(0);
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(true));
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(false)) << "nothing new";
  VRPC_ASSERT_OK(device_->DisableNotifications());
  AddChain(1);
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(false));
  EXPECT_THAT(device_->EnableNotifications(), IsOkAndHolds(true));
  AddChain(2);
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(true));
}

// Kick suppression with EVENT_IDX: kick only when avail.idx crosses the
// device's avail_event, i.e. once per EnableNotifications.
TEST_F(DriverQueueTest, KickDecisionFollowsAvailEvent) {
  Init(true);
  EXPECT_THAT(device_->EnableNotifications(), IsOkAndHolds(false));  // avail_event = 0
  AddChain(0);
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(true));
  AddChain(1);
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(false)) << "device did not re-arm";
  DeviceCompletesOne(0);
  DeviceCompletesOne(0);
  EXPECT_THAT(device_->EnableNotifications(), IsOkAndHolds(false));  // avail_event = 2
  AddChain(2);
  AddChain(3);
  EXPECT_THAT(driver_->PublishAvail(), IsOkAndHolds(true)) << "batch 2..4 crossed 2";
}

// Interrupt suppression, both directions through the real queues.
TEST_F(DriverQueueTest, InterruptDecisionWithEventIdx) {
  Init(true);
  AddChain(0);
  AddChain(1);
  AddChain(2);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  EXPECT_THAT(driver_->EnableInterrupts(), IsOkAndHolds(false));  // used_event = 0
  DeviceCompletesOne(0);
  EXPECT_TRUE(device_->ShouldNotify());
  DeviceCompletesOne(0);
  EXPECT_FALSE(device_->ShouldNotify()) << "driver has not re-armed";
  EXPECT_THAT(driver_->PopUsed(), IsOkAndHolds(Optional(IsUsed(0, 0u, 0u))));
  EXPECT_THAT(driver_->PopUsed(), IsOkAndHolds(Optional(IsUsed(2, 0u, 1u))));
  EXPECT_THAT(driver_->EnableInterrupts(), IsOkAndHolds(false));  // used_event = 2
  DeviceCompletesOne(0);
  EXPECT_TRUE(device_->ShouldNotify());
  EXPECT_THAT(driver_->EnableInterrupts(), IsOkAndHolds(true)) << "completion pending";
}

TEST_F(DriverQueueTest, InterruptDecisionWithoutEventIdx) {
  Init(false);
  AddChain(0);
  AddChain(1);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  VRPC_ASSERT_OK(driver_->DisableInterrupts());
  DeviceCompletesOne(0);
  EXPECT_FALSE(device_->ShouldNotify());
  EXPECT_THAT(driver_->EnableInterrupts(), IsOkAndHolds(true));
  DeviceCompletesOne(0);
  EXPECT_TRUE(device_->ShouldNotify());
}

// ---------------------------------------------------------------------------
// A hostile device (HARDENING rows 2, 5, 7, 12, 14 from the guest's side)
// ---------------------------------------------------------------------------

TEST_F(DriverQueueTest, UsedIdxClaimingMoreThanPublishedIsRejected) {
  Init(false);
  AddChain(0);
  AddChain(1);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  AddChain(2);  // added, not published: not completable
  ring_->SetUsedElem(0, 0, 0);
  ring_->SetUsedElem(1, 2, 0);
  ring_->SetUsedElem(2, 4, 0);
  ring_->SetUsedIdx(3);
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("only 2 chains are published")));
  EXPECT_TRUE(driver_->broken());
  ExpectInert();
}

TEST_F(DriverQueueTest, UsedIdFFFFIsRejected) {
  Init(false);
  AddChain(0);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  ring_->SetUsedElem(0, 0xffffffffu, 0);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->PopUsed(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(">= queue size")));
  ExpectInert();
}

TEST_F(DriverQueueTest, UsedIdEqualToQueueSizeIsRejected) {
  Init(false);
  AddChain(0);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  ring_->SetUsedElem(0, kSize, 0);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectInert();
}

// A descriptor that is in a chain but is not its head.
TEST_F(DriverQueueTest, UsedIdOfANonHeadDescriptorIsRejected) {
  Init(false);
  const uint16_t head = AddChain(0);  // two descriptors: head and head+1
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  ring_->SetUsedElem(0, head + 1u, 0);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("not the head")));
  ExpectInert();
}

TEST_F(DriverQueueTest, UsedIdOfAnUnpublishedChainIsRejected) {
  Init(false);
  AddChain(0);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  const uint16_t unpublished = AddChain(1);
  ring_->SetUsedElem(0, unpublished, 0);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("not the head")));
}

TEST_F(DriverQueueTest, DoubleCompletionIsRejected) {
  Init(false);
  const uint16_t a = AddChain(0);
  AddChain(1);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  ring_->SetUsedElem(0, a, 0);
  ring_->SetUsedElem(1, a, 0);
  ring_->SetUsedIdx(2);
  EXPECT_THAT(driver_->PopUsed(), IsOkAndHolds(Optional(IsUsed(a, 0u, 0u))));
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectInert();
}

TEST_F(DriverQueueTest, UsedLenBeyondWritableBytesIsRejected) {
  Init(false);
  const uint16_t a = AddChain(0, /*writable=*/32);
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  ring_->SetUsedElem(0, a, 33);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("exceeds its 32 writable")));
  ExpectInert();
}

TEST_F(DriverQueueTest, UsedLenOnAReadOnlyChainMustBeZero) {
  Init(false);
  const DriverBuffer r[] = {{kBuf, 16}};
  VRPC_ASSERT_OK_AND_ASSIGN(uint16_t a, driver_->Add(r, {}, 7));
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  ring_->SetUsedElem(0, a, 1);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->PopUsed(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(DriverQueueTest, UsedIdxLieSeenByEnableInterruptsIsRejected) {
  Init(true);
  ring_->SetUsedIdx(1);
  EXPECT_THAT(driver_->EnableInterrupts(), StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectInert();
}

// Row 7, guest side: the device scribbles over the descriptor table; the
// driver never reads it back, so its free list stays intact.
TEST_F(DriverQueueTest, DeviceRewritingDescriptorsCannotCorruptTheDriver) {
  Init(false);
  for (uint64_t t = 0; t < 4; ++t) AddChain(t);  // all 8 descriptors
  VRPC_ASSERT_OK(driver_->PublishAvail().status());
  for (uint32_t i = 0; i < kSize; ++i) ring_->SetDesc(i, kHole, 0xffffffffu, 0xffff, 0);
  for (uint32_t i = 0; i < 4; ++i) ring_->SetUsedElem(i, 2 * i, 0);
  ring_->SetUsedIdx(4);
  for (uint64_t t = 0; t < 4; ++t) {
    checker_.BeginScope();
    EXPECT_THAT(driver_->PopUsed(), IsOkAndHolds(Optional(IsUsed(2 * t, 0u, t))));
    EXPECT_TRUE(checker_.ok()) << checker_.Report();
  }
  EXPECT_EQ(driver_->free_descriptors(), kSize);
  // Every descriptor can be posted again, each exactly once.
  const DriverBuffer one[] = {{kBuf, 1}};
  std::vector<uint16_t> heads;
  for (uint32_t i = 0; i < kSize; ++i) {
    VRPC_ASSERT_OK_AND_ASSIGN(uint16_t h, driver_->Add(one, {}, i));
    heads.push_back(h);
  }
  std::sort(heads.begin(), heads.end());
  EXPECT_THAT(heads, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc
