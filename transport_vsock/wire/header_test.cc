#include "transport_vsock/wire/header.h"

#include <array>
#include <cstdint>
#include <random>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

using ::testing::ElementsAreArray;

TEST(HeaderTest, SizeMatchesSpec) { EXPECT_EQ(kHeaderSize, 44u); }

// Every field at its spec offset, little-endian (virtio 1.2 §5.10.6).
TEST(HeaderTest, EncodesFieldsAtSpecOffsets) {
  Header h;
  h.src_cid = 0x0102030405060708ull;
  h.dst_cid = 0x1112131415161718ull;
  h.src_port = 0x21222324;
  h.dst_port = 0x31323334;
  h.len = 0x41424344;
  h.type = 0x5152;
  h.op = 0x6162;
  h.flags = 0x71727374;
  h.buf_alloc = 0x81828384;
  h.fwd_cnt = 0x91929394;
  const std::array<uint8_t, 44> expected = {
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // src_cid @0
      0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,  // dst_cid @8
      0x24, 0x23, 0x22, 0x21,                          // src_port @16
      0x34, 0x33, 0x32, 0x31,                          // dst_port @20
      0x44, 0x43, 0x42, 0x41,                          // len @24
      0x52, 0x51,                                      // type @28
      0x62, 0x61,                                      // op @30
      0x74, 0x73, 0x72, 0x71,                          // flags @32
      0x84, 0x83, 0x82, 0x81,                          // buf_alloc @36
      0x94, 0x93, 0x92, 0x91,                          // fwd_cnt @40
  };
  EXPECT_THAT(EncodeHeader(h), ElementsAreArray(expected));
  EXPECT_THAT(DecodeHeader(expected), IsOkAndHolds(h));
}

TEST(HeaderTest, RoundTripsRandomHeaders) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    Header h;
    h.src_cid = rng();
    h.dst_cid = rng();
    h.src_port = static_cast<uint32_t>(rng());
    h.dst_port = static_cast<uint32_t>(rng());
    h.len = static_cast<uint32_t>(rng());
    h.type = static_cast<uint16_t>(rng());
    h.op = static_cast<uint16_t>(rng());
    h.flags = static_cast<uint32_t>(rng());
    h.buf_alloc = static_cast<uint32_t>(rng());
    h.fwd_cnt = static_cast<uint32_t>(rng());
    auto bytes = EncodeHeader(h);
    ASSERT_THAT(DecodeHeader(bytes), IsOkAndHolds(h));
  }
}

TEST(HeaderTest, DecodeRejectsShortInput) {
  std::array<uint8_t, 43> short_bytes{};
  EXPECT_THAT(DecodeHeader(short_bytes), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeHeader({}), StatusIs(absl::StatusCode::kInvalidArgument));
  std::array<uint8_t, 64> long_bytes{};
  EXPECT_THAT(DecodeHeader(long_bytes), IsOk());  // trailing payload is fine
}

TEST(HeaderTest, Names) {
  EXPECT_EQ(OpName(1), "REQUEST");
  EXPECT_EQ(OpName(7), "CREDIT_REQUEST");
  EXPECT_EQ(OpName(8), "OP(8)");
  EXPECT_EQ(TypeName(2), "SEQPACKET");
  EXPECT_EQ(TypeName(0xffff), "TYPE(65535)");
}

TEST(HeaderTest, GuestCidValidity) {
  EXPECT_FALSE(IsValidGuestCid(0));
  EXPECT_FALSE(IsValidGuestCid(1));
  EXPECT_FALSE(IsValidGuestCid(2));
  EXPECT_TRUE(IsValidGuestCid(3));
  EXPECT_TRUE(IsValidGuestCid(0xfffffffe));
  EXPECT_FALSE(IsValidGuestCid(0xffffffff));
  EXPECT_FALSE(IsValidGuestCid(0x100000003ull));
  EXPECT_FALSE(IsValidGuestCid(~0ull));
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
