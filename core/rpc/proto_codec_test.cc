// Serialize/Parse against protobuf's own encoding, for one-buffer and
// chunked messages, with the allocator the transport would pass.
#include "core/rpc/proto_codec.h"

#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace rpc {
namespace {

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 131 + 7);
  return s;
}

class ProtoCodecTest : public ::testing::Test {
 protected:
  // Records every block handed out.
  BufferAllocator Recording() {
    return [this](size_t size, uint8_t** data) {
      sizes_.push_back(size);
      return Slice::Allocate(size, data);
    };
  }
  std::vector<size_t> sizes_;
};

TEST_F(ProtoCodecTest, SmallMessageIsOneBufferOfItsSize) {
  google::protobuf::BytesValue m;
  m.set_value(Pattern(1000));
  SliceChain out;
  VRPC_ASSERT_OK(Serialize(m, &out, Recording()));
  EXPECT_EQ(sizes_, std::vector<size_t>{m.ByteSizeLong()});
  ASSERT_EQ(out.slices().size(), 1u);
  EXPECT_EQ(out.ToString(), m.SerializeAsString());
}

TEST_F(ProtoCodecTest, ChunkSizedMessageIsStillOneBuffer) {
  google::protobuf::BytesValue m;
  m.set_value(Pattern(kSerializeChunk - 4));  // tag + 3-byte length
  ASSERT_EQ(m.ByteSizeLong(), kSerializeChunk);
  SliceChain out;
  VRPC_ASSERT_OK(Serialize(m, &out, Recording()));
  EXPECT_EQ(out.slices().size(), 1u);
  EXPECT_EQ(out.ToString(), m.SerializeAsString());
}

TEST_F(ProtoCodecTest, LargeMessageIsCutIntoChunksThatParseBack) {
  for (size_t payload : {kSerializeChunk, size_t{1} << 20, (size_t{1} << 20) + 12345}) {
    SCOPED_TRACE(payload);
    sizes_.clear();
    google::protobuf::BytesValue m;
    m.set_value(Pattern(payload));
    const size_t size = m.ByteSizeLong();
    SliceChain out;
    VRPC_ASSERT_OK(Serialize(m, &out, Recording()));
    EXPECT_EQ(out.size(), size);
    EXPECT_EQ(out.slices().size(), (size + kSerializeChunk - 1) / kSerializeChunk);
    for (const Slice& s : out.slices()) EXPECT_LE(s.size(), kSerializeChunk);
    for (size_t n : sizes_) EXPECT_LE(n, kSerializeChunk);
    EXPECT_EQ(out.ToString(), m.SerializeAsString());
    google::protobuf::BytesValue back;
    VRPC_ASSERT_OK(Parse(out, &back));
    EXPECT_EQ(back.value(), m.value());
  }
}

TEST_F(ProtoCodecTest, ParseRejectsGarbage) {
  google::protobuf::BytesValue m;
  SliceChain bad(Slice::Copy(std::string("\x0a\xff\xff\xff\x0f", 5)));
  EXPECT_THAT(Parse(bad, &m), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
