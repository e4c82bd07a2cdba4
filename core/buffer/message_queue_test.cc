#include "core/buffer/message_queue.h"

#include <string>

#include "gtest/gtest.h"

namespace vrpc {
namespace {

SliceChain Message(int i) { return SliceChain(Slice::Copy(std::to_string(i))); }

TEST(MessageQueueTest, FirstInFirstOut) {
  MessageQueue q;
  EXPECT_TRUE(q.empty());
  for (int i = 0; i < 3; ++i) q.push_back(Message(i));
  EXPECT_EQ(q.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.pop_front().ToString(), std::to_string(i));
  EXPECT_TRUE(q.empty());
}

TEST(MessageQueueTest, OrderSurvivesCompactionWhileInterleaved) {
  // A reader that never quite catches up: popped slots are reclaimed
  // (compaction) without reordering or losing messages.
  MessageQueue q;
  int pushed = 0, popped = 0;
  for (int round = 0; round < 1000; ++round) {
    q.push_back(Message(pushed++));
    q.push_back(Message(pushed++));
    ASSERT_EQ(q.pop_front().ToString(), std::to_string(popped++));
    ASSERT_EQ(q.size(), static_cast<size_t>(pushed - popped));
  }
  while (!q.empty()) ASSERT_EQ(q.pop_front().ToString(), std::to_string(popped++));
  EXPECT_EQ(popped, pushed);
}

TEST(MessageQueueTest, ClearEmpties) {
  MessageQueue q;
  q.push_back(Message(1));
  q.push_back(Message(2));
  (void)q.pop_front();
  q.clear();
  EXPECT_TRUE(q.empty());
  q.push_back(Message(3));
  EXPECT_EQ(q.pop_front().ToString(), "3");
}

}  // namespace
}  // namespace vrpc
