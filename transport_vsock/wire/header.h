// File: transport_vsock/wire/header.h
//
// The virtio-vsock packet header (VIRTIO 1.2 §5.10.6): 44 bytes, packed,
// little-endian, followed by |len| payload bytes. Constants for ops, socket
// types, flags and well-known CIDs, and the codec between the wire bytes and
// a host-order Header value.
//
// Pure: no I/O, no allocation on the codec path.
#ifndef VRPC_TRANSPORT_VSOCK_WIRE_HEADER_H_
#define VRPC_TRANSPORT_VSOCK_WIRE_HEADER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vrpc {
namespace vsock {

inline constexpr size_t kHeaderSize = 44;

// Largest payload one packet may carry (Linux VIRTIO_VSOCK_MAX_PKT_BUF_SIZE,
// Firecracker and rust-vmm use the same bound).
inline constexpr uint32_t kMaxPacketPayload = 64 * 1024;

// Operation codes (le16 `op`).
enum class Op : uint16_t {
  kInvalid = 0,
  kRequest = 1,
  kResponse = 2,
  kRst = 3,
  kShutdown = 4,
  kRw = 5,
  kCreditUpdate = 6,
  kCreditRequest = 7,
};
inline constexpr uint16_t kMaxOp = 7;

// Socket types (le16 `type`).
enum class SocketType : uint16_t {
  kStream = 1,
  kSeqpacket = 2,
};

// OP_SHUTDOWN flags (mask values, as in Linux and QEMU headers): the sender
// will no longer receive (kShutdownRcv) / send (kShutdownSend). Permanent.
inline constexpr uint32_t kShutdownRcv = 1u << 0;
inline constexpr uint32_t kShutdownSend = 1u << 1;
inline constexpr uint32_t kShutdownBoth = kShutdownRcv | kShutdownSend;

// OP_RW flags for SEQPACKET: last packet of a message / of a record.
inline constexpr uint32_t kSeqEom = 1u << 0;
inline constexpr uint32_t kSeqEor = 1u << 1;

// Well-known context IDs.
inline constexpr uint64_t kCidHypervisor = 0;
inline constexpr uint64_t kCidLocal = 1;
inline constexpr uint64_t kCidHost = 2;
inline constexpr uint64_t kCidAny = 0xffffffffu;  // VMADDR_CID_ANY (-1U)

// Reserved port value VMADDR_PORT_ANY; never valid on the wire.
inline constexpr uint32_t kPortAny = 0xffffffffu;

// The header, in host byte order. |type| and |op| are kept as raw integers
// because a header decoded from a peer may carry values we do not know.
struct Header {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = 0;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;

  Op op_code() const { return static_cast<Op>(op); }
  SocketType socket_type() const { return static_cast<SocketType>(type); }

  friend bool operator==(const Header& a, const Header& b);
  friend bool operator!=(const Header& a, const Header& b) { return !(a == b); }
};

// Writes |h| as 44 little-endian bytes.
std::array<uint8_t, kHeaderSize> EncodeHeader(const Header& h);
void EncodeHeaderTo(const Header& h, uint8_t out[kHeaderSize]);

// Decodes the first 44 bytes of |bytes|. Decoding never fails on content: any
// 44 bytes are a Header, and what they mean is judged by CheckHeader (see
// validate.h). Returns kInvalidArgument if fewer than 44 bytes are given.
absl::StatusOr<Header> DecodeHeader(absl::Span<const uint8_t> bytes);

// "REQUEST", "RW", ... or "OP(9)" for unknown values.
std::string OpName(uint16_t op);
// "STREAM", "SEQPACKET" or "TYPE(n)".
std::string TypeName(uint16_t type);
// One line for traces: "REQUEST 3:49152 -> 2:9999 STREAM len=0 ...".
std::string HeaderToString(const Header& h);

// True for a CID a guest may be given: not 0, 1, 2 or 0xffffffff, and with
// the reserved upper 32 bits clear (VIRTIO 1.2 §5.10.4).
bool IsValidGuestCid(uint64_t cid);

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_WIRE_HEADER_H_
