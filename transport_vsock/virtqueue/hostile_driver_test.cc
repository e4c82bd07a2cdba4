// DeviceQueue in front of a hostile driver: every case of HARDENING rows 1-5,
// 7, 12 and 14 that applies to the descriptor-chain layer. The driver is
// played by RawRing, which writes anything into the rings. Every failing case
// also checks that the walk read no guest byte twice and that, once latched,
// the queue touches no guest memory at all.
#include <sys/mman.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/virtqueue/chain.h"
#include "transport_vsock/virtqueue/device_queue.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"
#include "transport_vsock/virtqueue/testing/raw_ring.h"
#include "transport_vsock/virtqueue/testing/read_once_checker.h"

namespace vrpc {
namespace virtqueue {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeGuestMemory;
using testing::kHole;
using testing::kMiB;
using testing::kRegionA;
using testing::kRegionB;
using testing::kRegionC;
using testing::RawRing;
using testing::ReadOnceChecker;
using testing::RingLayout;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint16_t N = kDescFlagNext;
constexpr uint16_t W = kDescFlagWrite;
constexpr uint16_t I = kDescFlagIndirect;

class HostileDriverTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kSize = 16;
  static constexpr uint64_t kData = kRegionA + 0x10000;   // payload buffers
  static constexpr uint64_t kTable = kRegionA + 0x20000;  // indirect tables

  HostileDriverTest() : layout_(RingLayout::Packed(kSize)), ring_(&fake_, layout_) {}

  // A queue over the fake memory, observed by checker_.
  std::unique_ptr<DeviceQueue> MakeQueue(bool indirect = true, uint32_t next_avail = 0) {
    return MakeQueueOver(fake_.memory(), indirect, next_avail);
  }
  std::unique_ptr<DeviceQueue> MakeQueueOver(const GuestMemory& memory, bool indirect,
                                             uint32_t next_avail = 0) {
    DeviceQueueConfig config = layout_.DeviceConfig(next_avail);
    config.indirect_desc = indirect;
    absl::StatusOr<std::unique_ptr<DeviceQueue>> q =
        DeviceQueue::Create(memory.WithObserver(&checker_), config);
    EXPECT_THAT(q, IsOk());
    return q.ok() ? *std::move(q) : nullptr;
  }

  // Pops one chain that must be valid; returns it (or a dummy on failure).
  Chain PopValid(DeviceQueue& q) {
    checker_.BeginScope();
    absl::StatusOr<std::optional<Chain>> r = q.Pop();
    EXPECT_THAT(r, IsOk());
    EXPECT_TRUE(checker_.ok()) << checker_.Report();
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no chain";
      return Chain(0, {{0, 0, false}}, false);
    }
    return **r;
  }

  // The next Pop must be a violation with |code| mentioning |what|; the
  // queue must then be latched and inert.
  void ExpectViolation(DeviceQueue& q, absl::StatusCode code, const std::string& what) {
    checker_.BeginScope();
    const uint64_t count = q.latch().violation_count();
    EXPECT_THAT(q.Pop(), StatusIs(code, HasSubstr(what)));
    EXPECT_TRUE(q.broken());
    EXPECT_EQ(q.latch().violation_count(), count + 1);
    EXPECT_TRUE(checker_.ok()) << checker_.Report();
    ExpectInert(q);
  }

  // HARDENING row 12: after the latch nothing reads or writes guest memory
  // (observer in every build; ASan poisoning on top in ASan builds).
  void ExpectInert(DeviceQueue& q) {
    const uint64_t before = checker_.accesses();
    fake_.Poison();
    EXPECT_THAT(q.Pop(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.Pop(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.PushUsed(0, 0), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.PushUsedBatch({UsedElement{0, 0}}),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_FALSE(q.ShouldNotify());
    EXPECT_THAT(q.EnableNotifications(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.DisableNotifications(), StatusIs(absl::StatusCode::kFailedPrecondition));
    const Chain chain(0, {{kData, 8, false}, {kData + 8, 8, true}}, false);
    uint8_t buf[4] = {};
    auto fn = [](uint64_t, absl::Span<uint8_t>) {};
    EXPECT_THAT(q.ReadChain(chain, 0, absl::MakeSpan(buf)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.WriteChain(chain, 0, buf), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.ForEachReadableSegment(chain, 0, 4, fn),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(q.ForEachWritableSegment(chain, 0, 4, fn),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    fake_.Unpoison();
    EXPECT_EQ(checker_.accesses(), before) << "a broken queue touched guest memory";
  }

  FakeGuestMemory fake_;
  RingLayout layout_;
  RawRing ring_;
  ReadOnceChecker checker_;
};

// ---------------------------------------------------------------------------
// Well-formed chains
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, PopsReadableThenWritableChain) {
  auto q = MakeQueue();
  ring_.SetDesc(3, kData, 44, N, 7);
  ring_.SetDesc(7, kData + 100, 10, N | W, 1);
  ring_.SetDesc(1, kRegionB, 20, W);
  ring_.PushAvail(3);
  const Chain c = PopValid(*q);
  EXPECT_EQ(c.head(), 3);
  EXPECT_FALSE(c.indirect());
  EXPECT_THAT(c.readable(), ElementsAre(ChainDescriptor{kData, 44, false}));
  EXPECT_THAT(c.writable(), ElementsAre(ChainDescriptor{kData + 100, 10, true},
                                        ChainDescriptor{kRegionB, 20, true}));
  EXPECT_EQ(c.readable_bytes(), 44u);
  EXPECT_EQ(c.writable_bytes(), 30u);
  EXPECT_EQ(q->last_avail_idx(), 1);
  EXPECT_EQ(q->in_flight(), 1u);
  EXPECT_FALSE(q->broken());
}

TEST_F(HostileDriverTest, WalksIndirectTableAfterDirectDescriptors) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 4, N, 5);
  // WRITE on the indirect descriptor itself is ignored (VIRTIO 1.2 2.7.5.3.2).
  ring_.SetDesc(5, kTable, 3 * 16, I | W);
  ring_.WriteDescAt(kTable + 0, Descriptor{kData + 4, 8, N, 2});
  ring_.WriteDescAt(kTable + 32, Descriptor{kData + 16, 16, N | W, 1});
  ring_.WriteDescAt(kTable + 16, Descriptor{kData + 32, 32, W, 0});
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  EXPECT_TRUE(c.indirect());
  EXPECT_THAT(c.descriptors(), ElementsAre(ChainDescriptor{kData, 4, false},
                                           ChainDescriptor{kData + 4, 8, false},
                                           ChainDescriptor{kData + 16, 16, true},
                                           ChainDescriptor{kData + 32, 32, true}));
  EXPECT_EQ(q->stats().descriptors_read, 5u);
}

// ---------------------------------------------------------------------------
// Row 1: loops and unbounded walks
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, SelfLoopIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 0, N, 0);  // DPDK cc7301908c: next = self, len 0
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "loop");
  EXPECT_EQ(q->stats().descriptors_read, 1u);
}

TEST_F(HostileDriverTest, TwoCycleIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(2, kData, 4, N, 9);
  ring_.SetDesc(9, kData, 4, N, 2);
  ring_.PushAvail(2);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "loop");
  EXPECT_EQ(q->stats().descriptors_read, 2u);
}

TEST_F(HostileDriverTest, CycleThroughIndirectTableIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, 4 * 16, I);
  ring_.WriteDescAt(kTable + 0, Descriptor{kData, 1, N, 1});
  ring_.WriteDescAt(kTable + 16, Descriptor{kData, 1, N, 2});
  ring_.WriteDescAt(kTable + 32, Descriptor{kData, 1, N, 1});
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "loop at indirect index 1");
}

TEST_F(HostileDriverTest, NextEqualToQueueSizeIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 4, N, kSize);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "next index 16 out of range");
}

TEST_F(HostileDriverTest, NextFFFFIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 4, N, 0xffff);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "out of range");
}

TEST_F(HostileDriverTest, NextBeyondIndirectTableIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, 2 * 16, I);
  ring_.WriteDescAt(kTable, Descriptor{kData, 1, N, 2});  // table has 2 entries
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "table size 2");
}

TEST_F(HostileDriverTest, IndirectInIndirectIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, 2 * 16, I);
  ring_.WriteDescAt(kTable, Descriptor{kData, 1, N, 1});
  ring_.WriteDescAt(kTable + 16, Descriptor{kTable + 0x100, 16, I, 0});
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "inside an indirect table");
}

TEST_F(HostileDriverTest, IndirectWithNextIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, 16, I | N, 1);
  ring_.SetDesc(1, kData, 4, 0);
  ring_.WriteDescAt(kTable, Descriptor{kData, 1, 0, 0});
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "INDIRECT together with NEXT");
}

// rust-vmm test_ttl_wrap_around: a chain through every descriptor of the
// table is legal (exactly queue-size long)...
TEST_F(HostileDriverTest, ChainThroughTheWholeTableIsAccepted) {
  auto q = MakeQueue();
  for (uint32_t i = 0; i < kSize; ++i) {
    const bool last = i + 1 == kSize;
    ring_.SetDesc(i, kData + i, 1, last ? 0 : N, static_cast<uint16_t>(last ? 0 : i + 1));
  }
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  EXPECT_EQ(c.descriptors().size(), kSize);
  EXPECT_EQ(c.readable_bytes(), kSize);
}

// ... but closing it into a ring is a loop, caught after each descriptor was
// read exactly once.
TEST_F(HostileDriverTest, FullyPopulatedTableLoopIsRejected) {
  auto q = MakeQueue();
  for (uint32_t i = 0; i < kSize; ++i) {
    ring_.SetDesc(i, kData + i, 1, N, static_cast<uint16_t>((i + 1) % kSize));
  }
  ring_.PushAvail(5);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "loop at ring index 5");
  EXPECT_EQ(q->stats().descriptors_read, kSize);
}

// The same at the largest legal queue size: bounded, and the full chain is
// still accepted.
TEST(HostileDriverMaxSizeTest, ChainOf32768DescriptorsIsAcceptedAndLoopRejected) {
  FakeGuestMemory fake;
  const RingLayout layout = RingLayout::Packed(kMaxQueueSize);
  RawRing ring(&fake, layout);
  for (uint32_t i = 0; i < kMaxQueueSize; ++i) {
    const bool last = i + 1 == kMaxQueueSize;
    ring.SetDesc(i, kRegionB + i, 1, last ? 0 : N, static_cast<uint16_t>(last ? 0 : i + 1));
  }
  ring.PushAvail(0);
  VRPC_ASSERT_OK_AND_ASSIGN(auto q, DeviceQueue::Create(fake.memory(), layout.DeviceConfig()));
  VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Chain> c, q->Pop());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->descriptors().size(), kMaxQueueSize);
  VRPC_ASSERT_OK(q->PushUsed(c->head(), 0));

  ring.SetDesc(kMaxQueueSize - 1, kRegionB, 1, N, 0);  // close the loop
  ring.PushAvail(0);
  EXPECT_THAT(q->Pop(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loop")));
  EXPECT_EQ(q->stats().descriptors_read, 2u * kMaxQueueSize);
}

// ---------------------------------------------------------------------------
// Row 1/4/5: indirect table validation
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, IndirectLenZeroIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, 0, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "not a positive multiple of 16");
}

TEST_F(HostileDriverTest, IndirectLenNotMultipleOf16IsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, 24, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "not a positive multiple of 16");
}

TEST_F(HostileDriverTest, IndirectTableLongerThanQueueIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kTable, (kSize + 1) * 16, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "exceeds the queue size");
}

TEST_F(HostileDriverTest, IndirectTableInHoleIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kHole + 0x100, 32, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "indirect table");
}

TEST_F(HostileDriverTest, IndirectTableStraddlingHoleIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kHole - 16, 32, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "indirect table");
}

// A table must be contiguous in one region (we never stitch descriptors
// together across regions).
TEST_F(HostileDriverTest, IndirectTableStraddlingAdjacentRegionsIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kRegionC - 16, 32, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "indirect table");
}

TEST_F(HostileDriverTest, IndirectTableAtTopOfAddressSpaceIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kU64Max - 8, 16, I);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "indirect table");
}

// Row 14: a flag not allowed by the negotiated features.
TEST_F(HostileDriverTest, IndirectWithoutTheFeatureIsRejected) {
  auto q = MakeQueue(/*indirect=*/false);
  ring_.SetDesc(0, kTable, 16, I);
  ring_.WriteDescAt(kTable, Descriptor{kData, 1, 0, 0});
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "not negotiated");
}

// ---------------------------------------------------------------------------
// Rows 2 and 3: indices
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, HeadEqualToQueueSizeIsRejected) {
  auto q = MakeQueue();
  ring_.PushAvail(kSize);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "head 16");
}

TEST_F(HostileDriverTest, HeadFFFFIsRejected) {
  auto q = MakeQueue();
  ring_.PushAvail(0xffff);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "head 65535");
}

TEST_F(HostileDriverTest, HeadMadeAvailableAgainWhileInFlightIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(4, kData, 8, 0);
  ring_.PushAvail(4);
  ring_.PushAvail(4);
  PopValid(*q);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "in flight");
}

TEST_F(HostileDriverTest, AvailIdxClaimingQueueSizePlusOneIsRejectedUntilReset) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 8, 0);
  ring_.SetAvailIdx(kSize + 1);  // last (0) + qsz + 1
  const uint64_t reads_before = checker_.reads();
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "claims 17 new entries");
  // Only avail.idx itself was read: no ring entry, no descriptor.
  EXPECT_EQ(checker_.reads(), reads_before + 1);
  EXPECT_EQ(q->stats().descriptors_read, 0u);
  EXPECT_EQ(q->last_avail_idx(), 0);

  // After a reset (and a sane ring) the queue works again.
  for (uint32_t i = 0; i < kSize; ++i) ring_.SetAvailEntry(i, 0);
  ring_.SetAvailIdx(1);
  q->Reset();
  EXPECT_FALSE(q->broken());
  EXPECT_EQ(q->latch().violation_count(), 1u);
  const Chain c = PopValid(*q);
  EXPECT_EQ(c.head(), 0);
}

TEST_F(HostileDriverTest, AvailIdxExactlyQueueSizeAheadIsAccepted) {
  auto q = MakeQueue();
  for (uint32_t i = 0; i < kSize; ++i) {
    ring_.SetDesc(i, kData + 16 * i, 16, 0);
    ring_.PushAvail(static_cast<uint16_t>(i));
  }
  for (uint32_t i = 0; i < kSize; ++i) EXPECT_EQ(PopValid(*q).head(), i);
  EXPECT_THAT(q->Pop(), IsOkAndHolds(::testing::Eq(std::nullopt)));
  EXPECT_FALSE(q->broken());
}

// The avail index is free-running u16: the limit holds across the wrap.
TEST_F(HostileDriverTest, AvailIdxLimitAcrossU16Wrap) {
  ring_.SetDesc(0, kData, 8, 0);
  for (uint32_t i = 0; i < kSize; ++i) ring_.SetAvailEntry(i, 0);
  {
    auto q = MakeQueue(true, /*next_avail=*/0xfff8);
    ring_.SetAvailIdx(static_cast<uint16_t>(0xfff8 + kSize + 1));  // 0x0009
    ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "claims 17 new entries");
  }
  {
    auto q = MakeQueue(true, /*next_avail=*/0xfff8);
    ring_.SetAvailIdx(static_cast<uint16_t>(0xfff8 + 1));
    EXPECT_EQ(PopValid(*q).head(), 0);
    EXPECT_EQ(q->last_avail_idx(), 0xfff9);
  }
}

// An index that moves backwards claims ~65535 new entries.
TEST_F(HostileDriverTest, AvailIdxMovingBackwardsIsRejected) {
  auto q = MakeQueue(true, /*next_avail=*/100);
  ring_.SetAvailIdx(99);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "claims 65535 new entries");
}

// EnableNotifications re-reads avail.idx and applies the same rule.
TEST_F(HostileDriverTest, AvailIdxLieSeenByEnableNotificationsIsRejected) {
  auto q = MakeQueue();
  ring_.SetAvailIdx(kSize + 1);
  EXPECT_THAT(q->EnableNotifications(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(q->broken());
  ExpectInert(*q);
}

// ---------------------------------------------------------------------------
// Row 4: buffer addresses
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, BufferInsideHoleIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kHole + 64, 64, 0);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "not in guest memory");
}

TEST_F(HostileDriverTest, BufferStraddlingHoleIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 8, N, 1);
  ring_.SetDesc(1, kRegionB - 8, 16, W);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "not in guest memory");
}

TEST_F(HostileDriverTest, BufferAtTopOfAddressSpaceIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kU64Max - 8, 16, 0);  // addr + len wraps
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "not in guest memory");
}

TEST_F(HostileDriverTest, BufferEndingAtTopOfAddressSpaceIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kU64Max - 8, 9, 0);  // no wrap, but unmapped
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kOutOfRange, "not in guest memory");
}

// Buffers may span adjacent regions: they are read and written piece by
// piece, never by running off the end of one host mapping.
TEST_F(HostileDriverTest, BufferStraddlingAdjacentRegionsIsReadAndWrittenInPieces) {
  auto q = MakeQueue();
  std::vector<uint8_t> payload(32);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(0xa0 + i);
  fake_.Write(kRegionC - 10, payload);
  ring_.SetDesc(0, kRegionC - 10, 32, N, 1);
  ring_.SetDesc(1, kRegionC - 3, 6, W);
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  std::vector<uint8_t> out(32);
  VRPC_ASSERT_OK(q->ReadChain(c, 0, absl::MakeSpan(out)));
  EXPECT_EQ(out, payload);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
  const uint8_t reply[6] = {1, 2, 3, 4, 5, 6};
  VRPC_ASSERT_OK(q->WriteChain(c, 0, reply));
  uint8_t back[6];
  fake_.Read(kRegionC - 3, absl::MakeSpan(back));
  EXPECT_THAT(back, ElementsAre(1, 2, 3, 4, 5, 6));
}

// len = 0: a zero-length descriptor is legal anywhere (it names no byte) and
// is never translated or touched.
TEST_F(HostileDriverTest, ZeroLengthDescriptorsAreKeptButNeverTouched) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kHole, 0, N, 1);
  ring_.SetDesc(1, kU64Max, 0, N, 2);
  ring_.SetDesc(2, kData, 4, 0);
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  EXPECT_EQ(c.descriptors().size(), 3u);
  EXPECT_EQ(c.readable_bytes(), 4u);
  uint8_t out[4];
  const uint64_t before = checker_.reads();
  VRPC_ASSERT_OK(q->ReadChain(c, 0, absl::MakeSpan(out)));
  EXPECT_EQ(checker_.reads(), before + 1);  // only the 4 real bytes
}

// ---------------------------------------------------------------------------
// Row 5: length arithmetic and ordering
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, ReadableAfterWritableIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 8, N | W, 1);
  ring_.SetDesc(1, kData + 8, 8, 0);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "follows a device-writable");
}

TEST_F(HostileDriverTest, ReadableAfterWritableInsideIndirectTableIsRejected) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 8, N | W, 1);
  ring_.SetDesc(1, kTable, 16, I);
  ring_.WriteDescAt(kTable, Descriptor{kData + 8, 8, 0, 0});
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "follows a device-writable");
}

// Lengths whose sum passes 2^32 - 1. The buffers must be mapped for the walk
// to get that far, so this test maps an 8 GiB PROT_NONE reservation as a
// fourth region; nothing in it is ever touched.
class LengthOverflowTest : public HostileDriverTest {
 protected:
  static constexpr uint64_t kBig = uint64_t{16} << 30;
  static constexpr uint64_t kBigSize = uint64_t{8} << 30;

  void SetUp() override {
    void* p = mmap(nullptr, kBigSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    big_ = static_cast<uint8_t*>(p);
    std::vector<MemoryRegion> regions(fake_.memory().regions().begin(),
                                      fake_.memory().regions().end());
    regions.push_back(MemoryRegion{kBig, kBigSize, big_});
    VRPC_ASSERT_OK_AND_ASSIGN(memory_,
                              GuestMemory::Create(regions, fake_.memory().keepalive()));
  }
  void TearDown() override { munmap(big_, kBigSize); }

  uint8_t* big_ = nullptr;
  GuestMemory memory_;
};

TEST_F(LengthOverflowTest, CumulativeLengthAboveU32IsRejected) {
  auto q = MakeQueueOver(memory_, true);
  ring_.SetDesc(0, kBig, 0xffffffffu, N, 1);
  ring_.SetDesc(1, kData, 1, 0);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "exceeds 2^32 - 1");
}

TEST_F(LengthOverflowTest, OverflowSpreadOverReadableAndWritableIsRejected) {
  auto q = MakeQueueOver(memory_, true);
  ring_.SetDesc(0, kBig, 0x80000000u, N, 1);
  ring_.SetDesc(1, kBig + 0x80000000u, 0x80000000u, W);
  ring_.PushAvail(0);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "exceeds 2^32 - 1");
}

TEST_F(LengthOverflowTest, TotalOfExactlyU32MaxIsAccepted) {
  auto q = MakeQueueOver(memory_, true);
  ring_.SetDesc(0, kBig, 0xfffffff0u, N, 1);
  ring_.SetDesc(1, kData, 0xf, W);
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  EXPECT_EQ(c.readable_bytes(), 0xfffffff0u);
  EXPECT_EQ(c.writable_bytes(), 0xfu);
}

// A 44-byte header however the driver splits it (DPDK CVE-2022-2132), read
// exactly once, followed by the payload.
class HeaderSplitTest : public HostileDriverTest,
                        public ::testing::WithParamInterface<std::vector<uint32_t>> {};

TEST_P(HeaderSplitTest, HeaderAndPayloadReadOnceWhateverTheSplit) {
  constexpr size_t kHeader = 44;
  constexpr size_t kPayload = 20;
  std::vector<uint8_t> packet(kHeader + kPayload);
  for (size_t i = 0; i < packet.size(); ++i) packet[i] = static_cast<uint8_t>(i * 7 + 1);
  // Scatter the packet over descriptors of the given sizes, with gaps.
  const std::vector<uint32_t>& sizes = GetParam();
  uint64_t addr = kData;
  size_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    fake_.Write(addr, absl::MakeConstSpan(packet).subspan(off, sizes[i]));
    const bool last = i + 1 == sizes.size();
    ring_.SetDesc(static_cast<uint32_t>(i), addr, sizes[i], last ? 0 : N,
                  static_cast<uint16_t>(i + 1));
    off += sizes[i];
    addr += sizes[i] + 32;
  }
  ASSERT_EQ(off, packet.size());
  auto q = MakeQueue();
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);  // starts the read-once scope
  uint8_t header[kHeader];
  VRPC_ASSERT_OK(q->ReadChain(c, 0, absl::MakeSpan(header)));
  std::vector<uint8_t> payload(kPayload);
  VRPC_ASSERT_OK(q->ReadChain(c, kHeader, absl::MakeSpan(payload)));
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
  EXPECT_TRUE(std::equal(header, header + kHeader, packet.begin()));
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), packet.begin() + kHeader));
}

INSTANTIATE_TEST_SUITE_P(
    Splits, HeaderSplitTest,
    ::testing::Values(std::vector<uint32_t>{64},           // header + payload in one
                      std::vector<uint32_t>{44, 20},       // header, payload
                      std::vector<uint32_t>{1, 43, 20},    // split 1 + 43
                      std::vector<uint32_t>{43, 1, 20},    // split 43 + 1
                      std::vector<uint32_t>{43, 21},       // 43 + (1 + payload)
                      std::vector<uint32_t>{10, 20, 14, 20},  // over 3 descriptors
                      std::vector<uint32_t>{1, 1, 1, 1, 40, 20}));

TEST_F(HostileDriverTest, ChainShorterThanHeaderIsAnErrorForTheCallerOnly) {
  auto q = MakeQueue();
  ring_.SetDesc(0, kData, 20, N, 1);
  ring_.SetDesc(1, kData + 64, 23, N, 2);
  ring_.SetDesc(2, kData + 128, 100, W);  // writable bytes do not count
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  uint8_t header[44];
  const uint64_t before = checker_.accesses();
  EXPECT_THAT(q->ReadChain(c, 0, absl::MakeSpan(header)),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("43 readable")));
  EXPECT_EQ(checker_.accesses(), before) << "nothing is read when the range is too short";
  // A short chain is the device's business (drop the packet), not a ring
  // violation: the queue keeps working.
  EXPECT_FALSE(q->broken());
  VRPC_EXPECT_OK(q->PushUsed(c.head(), 0));
}

// ---------------------------------------------------------------------------
// Row 7: snapshot once
// ---------------------------------------------------------------------------

TEST_F(HostileDriverTest, ChainIsAPrivateCopyOfTheDescriptors) {
  auto q = MakeQueue();
  fake_.Write(kData, std::vector<uint8_t>{1, 2, 3, 4});
  ring_.SetDesc(0, kData, 4, N, 1);
  ring_.SetDesc(1, kData + 64, 8, W);
  ring_.PushAvail(0);
  const Chain c = PopValid(*q);
  // The driver rewrites the descriptors after the device took the chain.
  ring_.SetDesc(0, kHole, 0xffffffffu, N | I, 0);
  ring_.SetDesc(1, kU64Max - 1, 0xffffffffu, N, 1);
  EXPECT_THAT(c.descriptors(), ElementsAre(ChainDescriptor{kData, 4, false},
                                           ChainDescriptor{kData + 64, 8, true}));
  uint8_t out[4];
  VRPC_ASSERT_OK(q->ReadChain(c, 0, absl::MakeSpan(out)));
  EXPECT_THAT(out, ElementsAre(1, 2, 3, 4));
  VRPC_EXPECT_OK(q->PushUsed(c.head(), 8));
}

TEST_F(HostileDriverTest, EveryGuestByteIsReadOnceAcrossManyChains) {
  auto q = MakeQueue();
  // Chains of 1..4 descriptors, some through indirect tables.
  for (uint16_t head = 0; head < 8; ++head) {
    const uint64_t buf = kData + head * 0x1000;
    if (head % 2 == 0) {
      ring_.SetDesc(head, buf, 44, N, static_cast<uint16_t>(head + 8));
      ring_.SetDesc(head + 8u, buf + 100, 64, W);
    } else {
      const uint64_t table = kTable + head * 0x100;
      ring_.SetDesc(head, table, 3 * 16, I);
      ring_.WriteDescAt(table, Descriptor{buf, 30, N, 1});
      ring_.WriteDescAt(table + 16, Descriptor{buf + 30, 14, N, 2});
      ring_.WriteDescAt(table + 32, Descriptor{buf + 64, 64, W, 0});
    }
    ring_.PushAvail(head);
  }
  for (int i = 0; i < 8; ++i) {
    const Chain c = PopValid(*q);
    uint8_t header[44];
    VRPC_ASSERT_OK(q->ReadChain(c, 0, absl::MakeSpan(header)));
    VRPC_ASSERT_OK(q->WriteChain(c, 0, header));
    VRPC_ASSERT_OK(q->PushUsed(c.head(), 44));
  }
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
  // And the checker does catch a second read of the same header.
  const Chain again(0, {{kData, 44, false}}, false);
  checker_.BeginScope();
  uint8_t header[44];
  VRPC_ASSERT_OK(q->ReadChain(again, 0, absl::MakeSpan(header)));
  VRPC_ASSERT_OK(q->ReadChain(again, 40, absl::MakeSpan(header, 4)));
  EXPECT_FALSE(checker_.ok());
}

// Row 12: a latched queue keeps failing even if the ring becomes valid.
TEST_F(HostileDriverTest, LatchSurvivesARepairedRing) {
  auto q = MakeQueue();
  ring_.PushAvail(kSize);
  ExpectViolation(*q, absl::StatusCode::kInvalidArgument, "head");
  ring_.SetAvailEntry(0, 0);
  ring_.SetDesc(0, kData, 4, 0);
  ExpectInert(*q);
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc
