#include "transport_vsock/vhost_user/message.h"

#include <cstdint>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vhost_user {
namespace {

using ::testing::HasSubstr;

TEST(MessageTest, HeaderRoundTrip) {
  MessageHeader h;
  h.request = kSetMemTable;
  h.flags = kVersion | kFlagNeedReply;
  h.size = 3;
  const std::vector<uint8_t> bytes = EncodeMessage(h, std::vector<uint8_t>{1, 2, 3});
  ASSERT_EQ(bytes.size(), kHeaderSize + 3);
  const MessageHeader d = DecodeHeader(bytes.data());
  EXPECT_EQ(d.request, h.request);
  EXPECT_EQ(d.flags, h.flags);
  EXPECT_EQ(d.size, h.size);
}

TEST(MessageTest, RequestHeaderFlags) {
  MessageHeader h;
  h.request = kGetFeatures;
  for (uint32_t flags : {0x1u, 0x9u}) {
    h.flags = flags;
    VRPC_EXPECT_OK(CheckRequestHeader(h)) << flags;
  }
  // Wrong version, REPLY set on a request, unknown bits.
  for (uint32_t flags : {0x0u, 0x2u, 0x3u, 0x5u, 0xdu, 0x11u, 0x80000001u}) {
    h.flags = flags;
    EXPECT_THAT(CheckRequestHeader(h),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << flags;
  }
}

TEST(MessageTest, RequestHeaderSizeCap) {
  MessageHeader h;
  h.request = kGetFeatures;
  h.flags = kVersion;
  h.size = kMaxPayloadSize;
  VRPC_EXPECT_OK(CheckRequestHeader(h));
  for (uint32_t size : {kMaxPayloadSize + 1, 0x10000u, 0xffffffffu}) {
    h.size = size;
    EXPECT_THAT(CheckRequestHeader(h), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(MessageTest, RequestSizeTable) {
  struct Case {
    uint32_t request;
    uint32_t size;
    bool ok;
  };
  const Case cases[] = {
      {kGetFeatures, 0, true},      {kGetFeatures, 8, false},
      {kSetFeatures, 8, true},      {kSetFeatures, 7, false},
      {kSetFeatures, 9, false},     {kSetFeatures, 0, false},
      {kSetOwner, 0, true},         {kSetOwner, 1, false},
      {kSetVringNum, 8, true},      {kSetVringNum, 4, false},
      {kSetVringAddr, 40, true},    {kSetVringAddr, 39, false},
      {kSetVringAddr, 48, false},   {kGetVringBase, 8, true},
      {kSetVringKick, 8, true},     {kSetVringKick, 4, false},
      {kSetMemTable, 40, true},     {kSetMemTable, 264, true},
      {kSetMemTable, 8, false},     {kSetMemTable, 296, false},
      {kGetConfig, 12, true},       {kGetConfig, 12 + 256, true},
      {kGetConfig, 11, false},      {kGetConfig, 12 + 257, false},
      {kAddMemReg, 40, true},       {kAddMemReg, 32, false},
      {kRemMemReg, 40, true},       {kGetMaxMemSlots, 0, true},
      {kGetQueueNum, 0, true},      {kSetVringEnable, 8, true},
  };
  for (const Case& c : cases) {
    const absl::Status s = CheckRequestSize(c.request, c.size);
    if (c.ok) {
      VRPC_EXPECT_OK(s) << RequestName(c.request) << " " << c.size;
    } else {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument))
          << RequestName(c.request) << " " << c.size;
    }
  }
}

TEST(MessageTest, UnknownRequestsHaveNoLayoutAndNoUb) {
  for (uint32_t request : {0u, 6u, 22u, 44u, 45u, 1000u, 0x80000000u, 0xffffffffu}) {
    EXPECT_THAT(CheckRequestSize(request, 0), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_FALSE(RequestHasReply(request));
    EXPECT_FALSE(RequestName(request).empty());
  }
  EXPECT_EQ(RequestName(0xffffffffu), "UNKNOWN(4294967295)");
  EXPECT_EQ(RequestName(kSetVringKick), "SET_VRING_KICK");
  EXPECT_TRUE(RequestHasReply(kGetVringBase));
  EXPECT_FALSE(RequestHasReply(kSetMemTable));
}

TEST(MessageTest, RingIndexCheckedAtFullWidth) {
  const uint32_t nq = 3;
  VRPC_EXPECT_OK(CheckRingIndex(0, nq));
  VRPC_EXPECT_OK(CheckRingIndex(2, nq));
  for (uint64_t index : {uint64_t{3}, uint64_t{4}, uint64_t{0x10000},
                         uint64_t{0x10001}, uint64_t{0x10002},
                         uint64_t{UINT32_MAX}, uint64_t{1} << 32}) {
    EXPECT_THAT(CheckRingIndex(index, nq), StatusIs(absl::StatusCode::kInvalidArgument))
        << index;
  }
}

TEST(MessageTest, RingSize) {
  for (uint32_t num : {1u, 2u, 128u, 256u, 1024u, 32768u}) {
    VRPC_EXPECT_OK(CheckRingSize(num)) << num;
  }
  for (uint32_t num : {0u, 3u, 100u, 129u, 65536u, 0x80000000u, 0xffffffffu}) {
    EXPECT_THAT(CheckRingSize(num), StatusIs(absl::StatusCode::kInvalidArgument))
        << num;
  }
}

TEST(MessageTest, VringFdRequest) {
  const uint32_t nq = 2;
  VRPC_ASSERT_OK_AND_ASSIGN(VringFdRequest r, ParseVringFdRequest(1, nq));
  EXPECT_EQ(r.index, 1u);
  EXPECT_FALSE(r.no_fd);
  VRPC_ASSERT_OK_AND_ASSIGN(r, ParseVringFdRequest(0x100 | 1, nq));
  EXPECT_EQ(r.index, 1u);
  EXPECT_TRUE(r.no_fd);
  // Out-of-range indices, including ones whose low 8 bits are valid.
  for (uint64_t v : {uint64_t{2}, uint64_t{3}, uint64_t{0xff}, uint64_t{0x10000},
                     uint64_t{0x10001}, uint64_t{0x200}, uint64_t{0x201},
                     uint64_t{UINT32_MAX}, uint64_t{1} << 32, UINT64_MAX}) {
    EXPECT_THAT(ParseVringFdRequest(v, nq), StatusIs(absl::StatusCode::kInvalidArgument))
        << v;
  }
}

TEST(MessageTest, FixedPayloadsRoundTripAndRejectWrongSizes) {
  VringState s{7, 128};
  VRPC_ASSERT_OK_AND_ASSIGN(VringState s2, ParseVringState(EncodeVringState(s)));
  EXPECT_EQ(s2.index, 7u);
  EXPECT_EQ(s2.num, 128u);
  VringAddress a;
  a.index = 1;
  a.flags = 0;
  a.desc_user_addr = 0x1000;
  a.used_user_addr = 0x3000;
  a.avail_user_addr = 0x2000;
  a.log_guest_addr = 0x4000;
  VRPC_ASSERT_OK_AND_ASSIGN(VringAddress a2, ParseVringAddress(EncodeVringAddress(a)));
  EXPECT_EQ(a2.desc_user_addr, 0x1000u);
  EXPECT_EQ(a2.used_user_addr, 0x3000u);
  EXPECT_EQ(a2.avail_user_addr, 0x2000u);
  EXPECT_EQ(a2.log_guest_addr, 0x4000u);
  std::vector<uint8_t> short_payload(7), long_payload(9);
  EXPECT_THAT(ParseU64(short_payload), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseU64(long_payload), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseVringState(long_payload), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseVringAddress(long_payload), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MessageTest, MemTable) {
  std::vector<MemoryRegionDesc> regions = {{0, 0xa0000, 0x7f0000000000, 0},
                                           {0xc0000, 0x100000, 0x7f00000c0000, 0xc0000}};
  VRPC_ASSERT_OK_AND_ASSIGN(std::vector<MemoryRegionDesc> parsed,
                            ParseMemTable(EncodeMemTable(regions)));
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[1].guest_addr, 0xc0000u);
  EXPECT_EQ(parsed[1].mmap_offset, 0xc0000u);

  // nregions 0 and 9.
  EXPECT_THAT(ParseMemTable(EncodeMemTable({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0 regions")));
  std::vector<MemoryRegionDesc> nine(9, {0, 0x1000, 0, 0});
  EXPECT_THAT(ParseMemTable(EncodeMemTable(nine)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("9 regions")));
  // nregions says 2 but only one region follows; and trailing garbage.
  std::vector<uint8_t> lying = EncodeMemTable(regions);
  lying.resize(lying.size() - kMemoryRegionSize);
  EXPECT_THAT(ParseMemTable(lying), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<uint8_t> trailing = EncodeMemTable(regions);
  trailing.push_back(0);
  EXPECT_THAT(ParseMemTable(trailing), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseMemTable(std::vector<uint8_t>(4)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MessageTest, RegionArithmeticOverflow) {
  const MemoryRegionDesc bad[] = {
      {0, 0, 0, 0},                              // size 0
      {UINT64_MAX - 0xfff, 0x2000, 0, 0},       // guest_addr + size
      {0, 0x2000, UINT64_MAX - 0xfff, 0},       // user_addr + size
      {0, 0x2000, 0, UINT64_MAX - 0xfff},       // mmap_offset + size
      {0, UINT64_MAX, 1, 0},
  };
  for (const MemoryRegionDesc& r : bad) {
    EXPECT_THAT(CheckMemoryRegion(r), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(ParseMemTable(EncodeMemTable({r})),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(ParseSingleRegion(EncodeSingleRegion(r)),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  // The end address must be representable: a region ending exactly at 2^64
  // is rejected, one ending a page below is fine.
  EXPECT_THAT(CheckMemoryRegion({UINT64_MAX - 0xfff, 0x1000, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  VRPC_EXPECT_OK(CheckMemoryRegion({UINT64_MAX - 0x1fff, 0x1000, 0, 0}));
}

TEST(MessageTest, SingleRegion) {
  MemoryRegionDesc r{0x100000, 0x2000, 0x7f0000100000, 0x100000};
  VRPC_ASSERT_OK_AND_ASSIGN(MemoryRegionDesc p, ParseSingleRegion(EncodeSingleRegion(r)));
  EXPECT_EQ(p.guest_addr, r.guest_addr);
  EXPECT_EQ(p.size, r.size);
  EXPECT_EQ(p.user_addr, r.user_addr);
  EXPECT_EQ(p.mmap_offset, r.mmap_offset);
  EXPECT_THAT(ParseSingleRegion(std::vector<uint8_t>(32)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MessageTest, Config) {
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  VRPC_ASSERT_OK_AND_ASSIGN(ConfigAccess c, ParseConfig(EncodeConfig(0, 0, bytes)));
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(c.size, 8u);
  EXPECT_EQ(c.payload, bytes);
  // Size field disagreeing with the payload, in both directions.
  std::vector<uint8_t> p = EncodeConfig(0, 0, bytes);
  p.pop_back();
  EXPECT_THAT(ParseConfig(p), StatusIs(absl::StatusCode::kInvalidArgument));
  p = EncodeConfig(0, 0, bytes);
  p.push_back(0);
  EXPECT_THAT(ParseConfig(p), StatusIs(absl::StatusCode::kInvalidArgument));
  // Too large, bad flags, offset overflow.
  EXPECT_THAT(ParseConfig(EncodeConfig(0, 0, std::vector<uint8_t>(257))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig(EncodeConfig(0, 2, bytes)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig(EncodeConfig(0xfffffffc, 0, bytes)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  VRPC_EXPECT_OK(ParseConfig(EncodeConfig(4, 1, bytes)).status());
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
