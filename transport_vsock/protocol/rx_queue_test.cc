#include "transport_vsock/protocol/rx_queue.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

SliceChain Bytes(absl::string_view s) { return SliceChain(Slice::Copy(s)); }

TEST(RxQueueTest, LargePayloadsAreNotCopied) {
  RxQueue q(/*copy_below=*/128);
  Slice big = Slice::Copy(std::string(1000, 'a'));
  q.Push(SliceChain(big));
  EXPECT_EQ(q.bytes(), 1000u);
  SliceChain out = q.Read(600);
  ASSERT_EQ(out.slices().size(), 1u);
  EXPECT_TRUE(out.slices()[0].SharesBackingWith(big));
  EXPECT_EQ(q.copied_bytes(), 0u);
  EXPECT_EQ(q.Read(10000).size(), 400u);
  EXPECT_TRUE(q.empty());
}

// HARDENING.md row 9: 1-byte packets must not pin one buffer each.
TEST(RxQueueTest, TinyPayloadsAreCoalescedAndReleased) {
  RxQueue q(/*copy_below=*/128);
  int released = 0;
  static const char kByte = 'x';
  for (int i = 0; i < 10000; ++i) {
    q.Push(SliceChain(Slice::External(reinterpret_cast<const uint8_t*>(&kByte), 1,
                                      [&released]() { ++released; })));
  }
  EXPECT_EQ(released, 10000);  // every transport buffer went back at once
  EXPECT_EQ(q.bytes(), 10000u);
  EXPECT_LE(q.slice_count(), 10000u / 4096 + 1);
  EXPECT_EQ(q.copied_bytes(), 10000u);
  EXPECT_EQ(q.Read(20000).ToString(), std::string(10000, 'x'));
}

TEST(RxQueueTest, StreamReadPreservesOrderAcrossMixedSizes) {
  RxQueue q(/*copy_below=*/4);
  q.Push(Bytes("ab"));
  q.Push(Bytes("cdefgh"));
  q.Push(Bytes("i"));
  q.Push(Bytes("j"));
  EXPECT_EQ(q.Read(3).ToString(), "abc");
  EXPECT_EQ(q.Read(100).ToString(), "defghij");
  EXPECT_TRUE(q.Read(5).empty());
}

TEST(RxQueueTest, MessagesKeepBoundariesAndRecords) {
  RxQueue q(/*copy_below=*/4);
  q.Push(Bytes("he"));
  q.Push(Bytes("llo"), /*end_of_message=*/true);
  q.Push(Bytes("x"));  // incomplete
  EXPECT_EQ(q.complete_messages(), 1u);
  auto m1 = q.ReadMessage();
  ASSERT_TRUE(m1.has_value());
  EXPECT_EQ(m1->data.ToString(), "hello");
  EXPECT_FALSE(m1->end_of_record);
  EXPECT_FALSE(q.ReadMessage().has_value());
  q.Push(Bytes("yz"), true, /*end_of_record=*/true);
  auto m2 = q.ReadMessage();
  ASSERT_TRUE(m2.has_value());
  EXPECT_EQ(m2->data.ToString(), "xyz");
  EXPECT_TRUE(m2->end_of_record);
  EXPECT_TRUE(q.empty());
}

TEST(RxQueueTest, SmallMessagesAreNotMergedAcrossBoundaries) {
  RxQueue q(/*copy_below=*/128);
  q.Push(Bytes("a"), true);
  q.Push(Bytes("b"), true);
  q.Push(Bytes("c"), true);
  EXPECT_EQ(q.ReadMessage()->data.ToString(), "a");
  EXPECT_EQ(q.ReadMessage()->data.ToString(), "b");
  EXPECT_EQ(q.ReadMessage()->data.ToString(), "c");
}

TEST(RxQueueTest, EmptyEndOfMessageWithoutFragmentsIsIgnored) {
  RxQueue q(/*copy_below=*/0);
  q.Push(SliceChain(), true);
  EXPECT_EQ(q.complete_messages(), 0u);
  q.Push(Bytes("abc"));
  q.Push(SliceChain(), true);  // closes "abc"
  EXPECT_EQ(q.ReadMessage()->data.ToString(), "abc");
}

TEST(RxQueueTest, ClearReleasesBuffers) {
  RxQueue q(/*copy_below=*/0);
  int released = 0;
  static const char kData[] = "payload";
  q.Push(SliceChain(Slice::External(reinterpret_cast<const uint8_t*>(kData), 7,
                                    [&released]() { ++released; })));
  EXPECT_EQ(released, 0);
  q.Clear();
  EXPECT_EQ(released, 1);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
