#include "transport_vsock/driver/internal/tx_pool.h"

#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace internal {
namespace {

std::shared_ptr<TxPool> MakePool(std::vector<uint8_t>& memory) {
  DmaRegion r;
  r.host = memory.data();
  r.device_addr = 0x100000000ull;
  r.size = memory.size();
  return TxPool::Create(r);
}

TEST(TxPoolTest, BlocksComeFromThePoolAndGoBack) {
  std::vector<uint8_t> memory(64 * 1024);
  auto pool = MakePool(memory);
  uint8_t* a = nullptr;
  Slice s = pool->Allocate(1000, &a);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_TRUE(pool->Contains(s.data(), s.size()));
  EXPECT_EQ(pool->DeviceAddr(s.data()), 0x100000000ull + (a - memory.data()));
  EXPECT_EQ(pool->in_use(), 1024u);
  Slice sub = s.Sub(10, 20);
  s = Slice();
  EXPECT_EQ(pool->in_use(), 1024u) << "a sub-slice holds the block";
  sub = Slice();
  EXPECT_EQ(pool->in_use(), 0u);
  uint8_t x = 0;
  EXPECT_FALSE(pool->Contains(&x, 1));
  EXPECT_FALSE(pool->Contains(memory.data() + memory.size() - 4, 8));
}

TEST(TxPoolTest, ExhaustionAndCoalescing) {
  std::vector<uint8_t> memory(64 * 1024);
  auto pool = MakePool(memory);
  std::vector<Slice> blocks;
  uint8_t* p = nullptr;
  for (int i = 0; i < 16; ++i) {
    blocks.push_back(pool->Allocate(4096, &p));
    ASSERT_NE(p, nullptr);
  }
  EXPECT_TRUE(pool->Allocate(1, &p).empty());
  EXPECT_EQ(p, nullptr);
  // Free every other block: no 8 KiB run; then the rest: one 64 KiB run.
  for (int i = 0; i < 16; i += 2) blocks[i] = Slice();
  EXPECT_TRUE(pool->Allocate(8192, &p).empty());
  for (int i = 1; i < 16; i += 2) blocks[i] = Slice();
  EXPECT_EQ(pool->in_use(), 0u);
  EXPECT_FALSE(pool->Allocate(64 * 1024, &p).empty());
  EXPECT_TRUE(pool->Allocate(0, &p).empty());
}

TEST(TxPoolTest, BlocksMayBeReleasedOnOtherThreadsAndOutliveThePoolHandle) {
  std::vector<uint8_t> memory(1 << 20);
  auto pool = MakePool(memory);
  std::vector<Slice> blocks;
  uint8_t* p = nullptr;
  for (int i = 0; i < 200; ++i) blocks.push_back(pool->Allocate(100 + i, &p));
  std::weak_ptr<TxPool> weak = pool;
  pool.reset();
  EXPECT_FALSE(weak.expired()) << "blocks keep the pool";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&blocks, t] {
      for (size_t i = t; i < blocks.size(); i += 4) blocks[i] = Slice();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace internal
}  // namespace vsock
}  // namespace vrpc
