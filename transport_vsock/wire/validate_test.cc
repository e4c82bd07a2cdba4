#include "transport_vsock/wire/validate.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

constexpr uint64_t kGuest = 3;
const AddressPolicy kHostPolicy{/*local_cid=*/kCidHost, /*peer_cid=*/kGuest};

Header Good(Op op = Op::kRw, uint32_t len = 0) {
  Header h;
  h.src_cid = kGuest;
  h.dst_cid = kCidHost;
  h.src_port = 1234;
  h.dst_port = 9999;
  h.type = static_cast<uint16_t>(SocketType::kStream);
  h.op = static_cast<uint16_t>(op);
  h.len = len;
  h.buf_alloc = 4096;
  return h;
}

HeaderVerdict Judge(const Header& h) { return CheckHeader(h, kHostPolicy).verdict; }

TEST(ValidateTest, AcceptsEveryKnownOpAndType) {
  for (uint16_t op = 1; op <= kMaxOp; ++op) {
    for (auto type : {SocketType::kStream, SocketType::kSeqpacket}) {
      Header h = Good(static_cast<Op>(op));
      h.type = static_cast<uint16_t>(type);
      auto check = CheckHeader(h, kHostPolicy);
      EXPECT_EQ(check.verdict, HeaderVerdict::kAccept) << OpName(op) << check.reason;
      EXPECT_TRUE(check.reason.ok());
    }
  }
}

TEST(ValidateTest, WrongDstCidIsDropped) {
  for (uint64_t dst : {uint64_t{0}, uint64_t{1}, kGuest, uint64_t{4}, uint64_t{0xffffffff},
                       ~uint64_t{0}, uint64_t{0x100000002}}) {
    Header h = Good();
    h.dst_cid = dst;
    EXPECT_EQ(Judge(h), HeaderVerdict::kDrop) << dst;
  }
}

// A guest must not claim another identity, a reserved CID included
// (HARDENING.md row 14).
TEST(ValidateTest, SpoofedOrReservedSrcCidIsDropped) {
  for (uint64_t src : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{4},
                       uint64_t{0xffffffff}, ~uint64_t{0}, uint64_t{0x100000003}}) {
    Header h = Good();
    h.src_cid = src;
    EXPECT_EQ(Judge(h), HeaderVerdict::kDrop) << src;
  }
}

TEST(ValidateTest, UnknownOpIsReset) {
  for (uint16_t op : {uint16_t{0}, uint16_t{8}, uint16_t{9}, uint16_t{0xffff}}) {
    Header h = Good();
    h.op = op;
    auto check = CheckHeader(h, kHostPolicy);
    EXPECT_EQ(check.verdict, HeaderVerdict::kReset) << op;
    EXPECT_EQ(check.reason.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ValidateTest, UnknownTypeIsReset) {
  for (uint16_t type : {uint16_t{0}, uint16_t{3}, uint16_t{0xffff}}) {
    Header h = Good();
    h.type = type;
    EXPECT_EQ(Judge(h), HeaderVerdict::kReset) << type;
  }
}

TEST(ValidateTest, RstIsNeverAnsweredWithRst) {
  Header h = Good(Op::kRst);
  h.type = 0xffff;
  EXPECT_EQ(Judge(h), HeaderVerdict::kDrop);
  h = Good(Op::kRst, 5);  // payload on RST
  EXPECT_EQ(Judge(h), HeaderVerdict::kDrop);
}

// The len boundary table of HARDENING.md row 5.
TEST(ValidateTest, PayloadLengthBoundaries) {
  struct Case {
    uint32_t len;
    HeaderVerdict verdict;
  };
  for (const Case& c : {Case{0, HeaderVerdict::kAccept}, Case{1, HeaderVerdict::kAccept},
                        Case{65535, HeaderVerdict::kAccept},
                        Case{65536, HeaderVerdict::kAccept},
                        Case{65537, HeaderVerdict::kReset},
                        Case{UINT32_MAX, HeaderVerdict::kReset}}) {
    auto check = CheckHeader(Good(Op::kRw, c.len), kHostPolicy);
    EXPECT_EQ(check.verdict, c.verdict) << c.len;
    if (c.verdict == HeaderVerdict::kReset) {
      EXPECT_EQ(check.reason.code(), absl::StatusCode::kResourceExhausted);
    }
  }
}

TEST(ValidateTest, PolicyLimitsPayload) {
  AddressPolicy small = kHostPolicy;
  small.max_payload = 4096;
  EXPECT_EQ(CheckHeader(Good(Op::kRw, 4096), small).verdict, HeaderVerdict::kAccept);
  EXPECT_EQ(CheckHeader(Good(Op::kRw, 4097), small).verdict, HeaderVerdict::kReset);
}

TEST(ValidateTest, PayloadOnControlOpIsReset) {
  for (Op op : {Op::kRequest, Op::kResponse, Op::kShutdown, Op::kCreditUpdate,
                Op::kCreditRequest}) {
    EXPECT_EQ(Judge(Good(op, 1)), HeaderVerdict::kReset) << OpName(static_cast<uint16_t>(op));
  }
}

TEST(ValidateTest, PortAnyIsReset) {
  Header h = Good();
  h.src_port = kPortAny;
  EXPECT_EQ(Judge(h), HeaderVerdict::kReset);
  h = Good();
  h.dst_port = kPortAny;
  EXPECT_EQ(Judge(h), HeaderVerdict::kReset);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
