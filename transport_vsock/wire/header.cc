#include "transport_vsock/wire/header.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vrpc {
namespace vsock {
namespace {

// Byte offsets of each field (VIRTIO 1.2 §5.10.6; identical to Linux uapi
// struct virtio_vsock_hdr).
constexpr size_t kSrcCidOff = 0;
constexpr size_t kDstCidOff = 8;
constexpr size_t kSrcPortOff = 16;
constexpr size_t kDstPortOff = 20;
constexpr size_t kLenOff = 24;
constexpr size_t kTypeOff = 28;
constexpr size_t kOpOff = 30;
constexpr size_t kFlagsOff = 32;
constexpr size_t kBufAllocOff = 36;
constexpr size_t kFwdCntOff = 40;

template <typename T>
void StoreLe(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

template <typename T>
T LoadLe(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

}  // namespace

bool operator==(const Header& a, const Header& b) {
  return a.src_cid == b.src_cid && a.dst_cid == b.dst_cid &&
         a.src_port == b.src_port && a.dst_port == b.dst_port && a.len == b.len &&
         a.type == b.type && a.op == b.op && a.flags == b.flags &&
         a.buf_alloc == b.buf_alloc && a.fwd_cnt == b.fwd_cnt;
}

void EncodeHeaderTo(const Header& h, uint8_t out[kHeaderSize]) {
  StoreLe<uint64_t>(out + kSrcCidOff, h.src_cid);
  StoreLe<uint64_t>(out + kDstCidOff, h.dst_cid);
  StoreLe<uint32_t>(out + kSrcPortOff, h.src_port);
  StoreLe<uint32_t>(out + kDstPortOff, h.dst_port);
  StoreLe<uint32_t>(out + kLenOff, h.len);
  StoreLe<uint16_t>(out + kTypeOff, h.type);
  StoreLe<uint16_t>(out + kOpOff, h.op);
  StoreLe<uint32_t>(out + kFlagsOff, h.flags);
  StoreLe<uint32_t>(out + kBufAllocOff, h.buf_alloc);
  StoreLe<uint32_t>(out + kFwdCntOff, h.fwd_cnt);
}

std::array<uint8_t, kHeaderSize> EncodeHeader(const Header& h) {
  std::array<uint8_t, kHeaderSize> out;
  EncodeHeaderTo(h, out.data());
  return out;
}

absl::StatusOr<Header> DecodeHeader(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vsock header needs ", kHeaderSize, " bytes, got ", bytes.size()));
  }
  const uint8_t* p = bytes.data();
  Header h;
  h.src_cid = LoadLe<uint64_t>(p + kSrcCidOff);
  h.dst_cid = LoadLe<uint64_t>(p + kDstCidOff);
  h.src_port = LoadLe<uint32_t>(p + kSrcPortOff);
  h.dst_port = LoadLe<uint32_t>(p + kDstPortOff);
  h.len = LoadLe<uint32_t>(p + kLenOff);
  h.type = LoadLe<uint16_t>(p + kTypeOff);
  h.op = LoadLe<uint16_t>(p + kOpOff);
  h.flags = LoadLe<uint32_t>(p + kFlagsOff);
  h.buf_alloc = LoadLe<uint32_t>(p + kBufAllocOff);
  h.fwd_cnt = LoadLe<uint32_t>(p + kFwdCntOff);
  return h;
}

std::string OpName(uint16_t op) {
  switch (static_cast<Op>(op)) {
    case Op::kInvalid: return "INVALID";
    case Op::kRequest: return "REQUEST";
    case Op::kResponse: return "RESPONSE";
    case Op::kRst: return "RST";
    case Op::kShutdown: return "SHUTDOWN";
    case Op::kRw: return "RW";
    case Op::kCreditUpdate: return "CREDIT_UPDATE";
    case Op::kCreditRequest: return "CREDIT_REQUEST";
  }
  return absl::StrCat("OP(", op, ")");
}

std::string TypeName(uint16_t type) {
  switch (static_cast<SocketType>(type)) {
    case SocketType::kStream: return "STREAM";
    case SocketType::kSeqpacket: return "SEQPACKET";
  }
  return absl::StrCat("TYPE(", type, ")");
}

std::string HeaderToString(const Header& h) {
  return absl::StrFormat(
      "%-14s %d:%d -> %d:%d %s len=%d flags=0x%x buf_alloc=%d fwd_cnt=%d",
      OpName(h.op), h.src_cid, h.src_port, h.dst_cid, h.dst_port, TypeName(h.type),
      h.len, h.flags, h.buf_alloc, h.fwd_cnt);
}

bool IsValidGuestCid(uint64_t cid) {
  return cid > kCidHost && cid < kCidAny;
}

}  // namespace vsock
}  // namespace vrpc
