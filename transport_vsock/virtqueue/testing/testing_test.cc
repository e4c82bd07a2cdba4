// Tests of the test utilities themselves: a broken checker proves nothing.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"
#include "transport_vsock/virtqueue/testing/raw_ring.h"
#include "transport_vsock/virtqueue/testing/read_once_checker.h"

namespace vrpc {
namespace virtqueue {
namespace testing {
namespace {

TEST(FakeGuestMemoryTest, DefaultLayoutHasHoleAndAdjacentRegions) {
  FakeGuestMemory fake;
  const GuestMemory& m = fake.memory();
  ASSERT_EQ(m.regions().size(), 3u);
  EXPECT_TRUE(m.IsMapped(kRegionA, kMiB));
  EXPECT_FALSE(m.IsMapped(kHole, 1));
  EXPECT_FALSE(m.IsMapped(kRegionB - 1, 1));
  EXPECT_TRUE(m.IsMapped(kRegionB, 2 * kMiB));
  EXPECT_FALSE(m.IsMapped(kDefaultEnd, 1));
  // B and C are separate allocations: not one host range.
  EXPECT_NE(m.regions()[1].host_addr, m.regions()[2].host_addr);
  EXPECT_FALSE(m.Translate(kRegionC - 1, 2).ok());
}

TEST(FakeGuestMemoryTest, WriteReadAcrossAdjacentRegions) {
  FakeGuestMemory fake;
  const std::vector<uint8_t> in = {1, 2, 3, 4, 5, 6};
  fake.Write(kRegionC - 3, in);
  std::vector<uint8_t> out(6);
  fake.Read(kRegionC - 3, absl::MakeSpan(out));
  EXPECT_EQ(in, out);
  EXPECT_EQ(fake.At(kRegionC)[0], 4);
  fake.Fill(0x77);
  EXPECT_EQ(fake.At(kRegionB + 5)[0], 0x77);
}

TEST(FakeGuestMemoryTest, CustomLayout) {
  FakeGuestMemory fake({{0x10000, 0x1000}, {0x30000, 0x2000}});
  EXPECT_TRUE(fake.memory().IsMapped(0x30000, 0x2000));
  EXPECT_FALSE(fake.memory().IsMapped(0x11000, 1));
}

TEST(FakeGuestMemoryTest, PoisonAndUnpoisonWithoutAccessIsHarmless) {
  FakeGuestMemory fake;
  fake.Poison();
  fake.Unpoison();
  fake.At(kRegionA)[0] = 1;
  EXPECT_EQ(fake.At(kRegionA)[0], 1);
}

// Proves that Poison() really makes "touches no guest memory" checkable.
TEST(FakeGuestMemoryDeathTest, PoisonedMemoryCrashesUnderAsan) {
  if (!FakeGuestMemory::PoisoningSupported()) GTEST_SKIP() << "not an ASan build";
  FakeGuestMemory fake;
  volatile uint8_t* p = fake.At(kRegionC + 5);
  fake.Poison();
  EXPECT_DEATH((void)*p, "use-after-poison");
  fake.Unpoison();
  EXPECT_EQ(*p, 0);
}

TEST(FakeGuestMemoryTest, GuestMemoryOutlivesTheFake) {
  GuestMemory copy;
  {
    FakeGuestMemory fake;
    fake.At(kRegionB)[0] = 42;
    copy = fake.memory();
  }
  uint8_t b = 0;
  ASSERT_TRUE(copy.CopyFrom(kRegionB, absl::MakeSpan(&b, 1)).ok());
  EXPECT_EQ(b, 42);
}

TEST(ReadOnceCheckerTest, DisjointAndAdjacentReadsAreFine) {
  ReadOnceChecker c;
  c.OnRead(100, 10);
  c.OnRead(110, 10);
  c.OnRead(90, 10);
  c.OnRead(200, 1);
  c.OnRead(150, 0);
  EXPECT_TRUE(c.ok()) << c.Report();
  EXPECT_EQ(c.reads(), 5u);
}

TEST(ReadOnceCheckerTest, AnyOverlapIsADoubleRead) {
  for (auto [addr, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {100, 1}, {119, 1}, {95, 6}, {119, 10}, {50, 100}, {105, 2}}) {
    ReadOnceChecker c;
    c.OnRead(100, 20);
    c.OnRead(addr, len);
    EXPECT_FALSE(c.ok()) << addr << "+" << len;
    EXPECT_THAT(c.Report(), ::testing::HasSubstr("read twice"));
  }
}

TEST(ReadOnceCheckerTest, ScopesAreIndependentAndWritesAreCounted) {
  ReadOnceChecker c;
  c.OnRead(100, 20);
  c.OnRead(100, 20);
  EXPECT_FALSE(c.scope_ok());
  c.BeginScope();
  EXPECT_TRUE(c.scope_ok());
  EXPECT_FALSE(c.ok()) << "violations of earlier scopes are kept";
  c.OnRead(100, 20);
  c.OnWrite(100, 20);
  c.OnWrite(100, 20);
  EXPECT_TRUE(c.scope_ok());
  EXPECT_EQ(c.accesses(), 5u);
  EXPECT_EQ(c.writes(), 2u);
}

TEST(AccessLogTest, RecordsInOrder) {
  AccessLog log;
  log.OnRead(1, 2);
  log.OnWrite(3, 4);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log.accesses()[1].kind, Access::Kind::kWrite);
  EXPECT_EQ(log.accesses()[1].addr, 3u);
  EXPECT_EQ(log.reads(), 1u);
  log.Clear();
  EXPECT_EQ(log.size(), 0u);
}

TEST(RawRingTest, PackedLayoutIsAlignedAndFits) {
  const RingLayout l = RingLayout::Packed(kMaxQueueSize, kRegionA + 8, true);
  EXPECT_EQ(l.desc_addr % kDescTableAlign, 0u);
  EXPECT_EQ(l.avail_addr % kAvailRingAlign, 0u);
  EXPECT_EQ(l.used_addr % kUsedRingAlign, 0u);
  EXPECT_LE(l.end(), kRegionA + kMiB);
  EXPECT_GE(l.used_addr, l.avail_addr + AvailRingBytes(kMaxQueueSize, true));
}

TEST(RawRingTest, WritesTheSpecLayout) {
  FakeGuestMemory fake;
  const RingLayout l = RingLayout::Packed(4);
  RawRing ring(&fake, l);
  ring.SetDesc(2, 0x1122, 33, kDescFlagNext, 3);
  EXPECT_EQ(fake.At(l.desc_addr + 32)[0], 0x22);
  EXPECT_EQ(fake.At(l.desc_addr + 32 + 8)[0], 33);
  ring.PushAvail(2);
  ring.PushAvail(1);
  EXPECT_EQ(ring.avail_idx(), 2);
  EXPECT_EQ(fake.At(l.avail_addr + kAvailRingOffset + 2)[0], 1);
  ring.SetUsedElem(3, 0xdeadbeef, 7);
  EXPECT_EQ(ring.used_id(3), 0xdeadbeefu);
  EXPECT_EQ(ring.used_len(3), 7u);
  EXPECT_EQ(fake.At(l.used_addr + kUsedRingOffset + 24)[0], 0xef);
}

}  // namespace
}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc
