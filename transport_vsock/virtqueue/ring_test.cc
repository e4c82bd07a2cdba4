#include "transport_vsock/virtqueue/ring.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace vrpc {
namespace virtqueue {
namespace {

// HARDENING row 2: sizes validated at full width, before any narrowing.
TEST(RingTest, QueueSizeMustBePowerOfTwoUpTo32768) {
  EXPECT_TRUE(IsValidQueueSize(1));
  EXPECT_TRUE(IsValidQueueSize(2));
  EXPECT_TRUE(IsValidQueueSize(256));
  EXPECT_TRUE(IsValidQueueSize(32768));
  EXPECT_FALSE(IsValidQueueSize(0));
  EXPECT_FALSE(IsValidQueueSize(3));
  EXPECT_FALSE(IsValidQueueSize(255));
  EXPECT_FALSE(IsValidQueueSize(65536));
  EXPECT_FALSE(IsValidQueueSize(0x10000 + 256));  // truncates to 256 as u16
  EXPECT_FALSE(IsValidQueueSize(UINT32_MAX));
  EXPECT_FALSE(IsValidQueueSize(uint64_t{1} << 33));
}

TEST(RingTest, PartSizesMatchTheSpec) {
  EXPECT_EQ(DescTableBytes(256), 4096u);
  EXPECT_EQ(AvailRingBytes(256, /*event_idx=*/false), 4u + 512u);
  EXPECT_EQ(AvailRingBytes(256, /*event_idx=*/true), 6u + 512u);
  EXPECT_EQ(UsedRingBytes(256, /*event_idx=*/false), 4u + 2048u);
  EXPECT_EQ(UsedRingBytes(256, /*event_idx=*/true), 6u + 2048u);
  EXPECT_EQ(UsedEventOffset(256), 4u + 512u);
  EXPECT_EQ(AvailEventOffset(256), 4u + 2048u);
  EXPECT_EQ(DescTableBytes(kMaxQueueSize), 512u * 1024u);
}

TEST(RingTest, DescriptorIsSixteenLittleEndianBytes) {
  uint8_t raw[16] = {};
  WriteDescriptor(raw, Descriptor{0x0102030405060708ull, 0x11121314, 0x2122, 0x3132});
  const uint8_t expected[16] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                0x14, 0x13, 0x12, 0x11, 0x22, 0x21, 0x32, 0x31};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(raw[i], expected[i]) << i;
  const Descriptor d = ReadDescriptor(raw);
  EXPECT_EQ(d.addr, 0x0102030405060708ull);
  EXPECT_EQ(d.len, 0x11121314u);
  EXPECT_EQ(d.flags, 0x2122);
  EXPECT_EQ(d.next, 0x3132);
}

TEST(RingTest, DescriptorsReadFromUnalignedAddresses) {
  alignas(16) uint8_t buf[40] = {};
  WriteDescriptor(buf + 3, Descriptor{42, 7, kDescFlagNext, 9});
  const Descriptor d = ReadDescriptor(buf + 3);
  EXPECT_EQ(d.addr, 42u);
  EXPECT_EQ(d.len, 7u);
  EXPECT_EQ(d.flags, kDescFlagNext);
  EXPECT_EQ(d.next, 9);
}

TEST(RingTest, OrderingHelpersStoreLittleEndian) {
  alignas(4) uint8_t buf[4] = {};
  StoreRelease16(buf, 0xa1b2);
  EXPECT_EQ(buf[0], 0xb2);
  EXPECT_EQ(buf[1], 0xa1);
  EXPECT_EQ(AcquireLoad16(buf), 0xa1b2);
  EXPECT_EQ(RelaxedLoad16(buf), 0xa1b2);
  RelaxedStore32(buf, 0x01020304);
  EXPECT_EQ(buf[0], 0x04);
  EXPECT_EQ(RelaxedLoad32(buf), 0x01020304u);
  RelaxedStore16(buf + 2, 7);
  EXPECT_EQ(RelaxedLoad16(buf + 2), 7);
}

// vring_need_event: notify iff event_idx lies in [old_idx, new_idx).
TEST(RingTest, NeedEventWithoutWrap) {
  EXPECT_TRUE(NeedEvent(/*event_idx=*/0, /*new_idx=*/1, /*old_idx=*/0));
  EXPECT_TRUE(NeedEvent(5, 10, 5));
  EXPECT_TRUE(NeedEvent(9, 10, 5));
  EXPECT_FALSE(NeedEvent(10, 10, 5));  // not crossed yet
  EXPECT_FALSE(NeedEvent(4, 10, 5));   // crossed before old_idx: already told
  EXPECT_FALSE(NeedEvent(3, 5, 5));    // nothing new
}

TEST(RingTest, NeedEventAcrossU16Wrap) {
  // old 0xfffe -> new 0x0002 covers 0xfffe, 0xffff, 0x0000, 0x0001.
  EXPECT_TRUE(NeedEvent(0xfffe, 0x0002, 0xfffe));
  EXPECT_TRUE(NeedEvent(0xffff, 0x0002, 0xfffe));
  EXPECT_TRUE(NeedEvent(0x0000, 0x0002, 0xfffe));
  EXPECT_TRUE(NeedEvent(0x0001, 0x0002, 0xfffe));
  EXPECT_FALSE(NeedEvent(0x0002, 0x0002, 0xfffe));
  EXPECT_FALSE(NeedEvent(0xfffd, 0x0002, 0xfffe));
  EXPECT_FALSE(NeedEvent(0x8000, 0x0002, 0xfffe));
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc
