#include "core/buffer/slice.h"

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace {

// Fake "guest memory" buffer that poisons itself when released, so a use
// after release shows up as wrong bytes (and as an ASan report in asan builds
// when the buffer is freed instead).
struct PoisoningBuffer {
  explicit PoisoningBuffer(std::string content) : bytes(std::move(content)) {}
  Slice Wrap() {
    return Slice::External(reinterpret_cast<const uint8_t*>(bytes.data()),
                           bytes.size(), [this]() {
                             ++releases;
                             std::memset(bytes.data(), 0xdd, bytes.size());
                           });
  }
  std::string bytes;
  int releases = 0;
};

TEST(SliceTest, CopyOwnsItsBytes) {
  std::string src = "hello";
  Slice s = Slice::Copy(src);
  src[0] = 'j';
  EXPECT_EQ(s.view(), "hello");
  EXPECT_EQ(s.size(), 5u);
}

TEST(SliceTest, ExternalReleasesOnceAfterLastReference) {
  PoisoningBuffer buf("guest payload");
  {
    Slice a = buf.Wrap();
    Slice b = a.Sub(6, 7);
    {
      Slice c = a;
      a = Slice();
      EXPECT_EQ(buf.releases, 0);
    }
    EXPECT_EQ(buf.releases, 0);
    EXPECT_EQ(b.view(), "payload");
  }
  EXPECT_EQ(buf.releases, 1);
  EXPECT_EQ(static_cast<uint8_t>(buf.bytes[0]), 0xdd);
}

TEST(SliceTest, ReleaseFromAnotherThread) {
  PoisoningBuffer buf("cross-thread");
  Slice s = buf.Wrap();
  std::thread t([moved = std::move(s)]() mutable { moved = Slice(); });
  t.join();
  EXPECT_EQ(buf.releases, 1);
}

TEST(SliceTest, SubSharesBacking) {
  Slice s = Slice::Copy(absl::string_view("abcdef"));
  Slice sub = s.Sub(2, 3);
  EXPECT_EQ(sub.view(), "cde");
  EXPECT_TRUE(sub.SharesBackingWith(s));
  EXPECT_FALSE(sub.SharesBackingWith(Slice::Copy(absl::string_view("cde"))));
}

TEST(SliceDeathTest, SubOutOfRangeIsABug) {
  Slice s = Slice::Copy(absl::string_view("abc"));
  EXPECT_DEATH((void)s.Sub(2, 2), "Sub");
}

TEST(SliceChainTest, AppendSkipsEmptySlices) {
  SliceChain chain;
  chain.Append(Slice());
  chain.Append(Slice::Copy(absl::string_view("ab")));
  chain.Append(Slice::Copy(absl::string_view("")));
  EXPECT_EQ(chain.slices().size(), 1u);
  EXPECT_EQ(chain.size(), 2u);
}

TEST(SliceChainTest, TakePrefixSplitsWithoutCopying) {
  Slice first = Slice::Copy(absl::string_view("0123"));
  Slice second = Slice::Copy(absl::string_view("456789"));
  SliceChain chain;
  chain.Append(first);
  chain.Append(second);
  SliceChain head = chain.TakePrefix(6);
  EXPECT_EQ(head.ToString(), "012345");
  EXPECT_EQ(chain.ToString(), "6789");
  EXPECT_EQ(head.size(), 6u);
  EXPECT_EQ(chain.size(), 4u);
  ASSERT_EQ(head.slices().size(), 2u);
  EXPECT_TRUE(head.slices()[1].SharesBackingWith(second));
  EXPECT_TRUE(chain.slices()[0].SharesBackingWith(second));
}

TEST(SliceChainTest, TakePrefixBoundaries) {
  SliceChain chain(Slice::Copy(absl::string_view("abc")));
  EXPECT_TRUE(chain.TakePrefix(0).empty());
  EXPECT_EQ(chain.TakePrefix(3).ToString(), "abc");
  EXPECT_TRUE(chain.empty());
  EXPECT_TRUE(chain.slices().empty());
}

TEST(SliceChainTest, CopyToIsBounded) {
  SliceChain chain;
  chain.Append(Slice::Copy(absl::string_view("ab")));
  chain.Append(Slice::Copy(absl::string_view("cd")));
  std::vector<uint8_t> out(3);
  EXPECT_EQ(chain.CopyTo(absl::MakeSpan(out)), 3u);
  EXPECT_EQ(std::string(out.begin(), out.end()), "abc");
  std::vector<uint8_t> big(10, 'x');
  EXPECT_EQ(chain.CopyTo(absl::MakeSpan(big)), 4u);
}

TEST(SliceChainTest, HoldingAPrefixHoldsTheBuffer) {
  PoisoningBuffer buf("0123456789");
  SliceChain chain(buf.Wrap());
  SliceChain prefix = chain.TakePrefix(2);
  chain.Clear();
  EXPECT_EQ(buf.releases, 0);
  EXPECT_EQ(prefix.ToString(), "01");
  prefix.Clear();
  EXPECT_EQ(buf.releases, 1);
}

TEST(SliceTest, RemovePrefixKeepsTheBacking) {
  Slice s = Slice::Copy(absl::string_view("012345"));
  Slice view = s;
  view.RemovePrefix(2);
  EXPECT_EQ(view.view(), "2345");
  EXPECT_TRUE(view.SharesBackingWith(s));
  view.RemovePrefix(4);
  EXPECT_TRUE(view.empty());
  EXPECT_EQ(s.view(), "012345");
}

TEST(SliceChainTest, RemovePrefixDropsWholeSlicesAndTrimsTheHead) {
  PoisoningBuffer first("0123");
  PoisoningBuffer second("456789");
  SliceChain chain;
  chain.Append(first.Wrap());
  chain.Append(second.Wrap());
  chain.RemovePrefix(0);
  EXPECT_EQ(chain.ToString(), "0123456789");
  chain.RemovePrefix(4);  // exactly the first slice
  EXPECT_EQ(first.releases, 1);
  EXPECT_EQ(chain.slices().size(), 1u);
  chain.RemovePrefix(3);  // inside the second
  EXPECT_EQ(chain.ToString(), "789");
  EXPECT_EQ(chain.size(), 3u);
  EXPECT_EQ(second.releases, 0);
  chain.RemovePrefix(3);
  EXPECT_TRUE(chain.empty());
  EXPECT_TRUE(chain.slices().empty());
  EXPECT_EQ(second.releases, 1);
}

TEST(SliceChainDeathTest, RemoveTooMuchIsABug) {
  SliceChain chain(Slice::Copy(absl::string_view("abc")));
  EXPECT_DEATH(chain.RemovePrefix(4), "RemovePrefix");
}

TEST(SliceChainTest, AdjacentPiecesOfOneBackingBecomeOneSlice) {
  uint8_t* raw = nullptr;
  Slice block = Slice::Allocate(8, &raw);
  std::memcpy(raw, "abcdefgh", 8);
  SliceChain chain;
  chain.Append(block.Sub(0, 3));
  chain.Append(block.Sub(3, 2));  // right behind: grows the first
  ASSERT_EQ(chain.slices().size(), 1u);
  chain.Append(block.Sub(6, 2));  // a gap: a new slice
  EXPECT_EQ(chain.slices().size(), 2u);
  EXPECT_EQ(chain.ToString(), "abcdegh");
  // Adjacent bytes of another backing are not merged.
  Slice other = Slice::Copy(absl::string_view("xy"));
  SliceChain two;
  two.Append(other.Sub(0, 1));
  two.Append(Slice::Copy(absl::string_view("y")));
  EXPECT_EQ(two.slices().size(), 2u);
  EXPECT_EQ(chain.size(), 7u);
}

TEST(SliceChainDeathTest, TakeTooMuchIsABug) {
  SliceChain chain(Slice::Copy(absl::string_view("abc")));
  EXPECT_DEATH((void)chain.TakePrefix(4), "TakePrefix");
}

}  // namespace
}  // namespace vrpc
