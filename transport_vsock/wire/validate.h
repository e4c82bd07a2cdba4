// File: transport_vsock/wire/validate.h
//
// Judges an untrusted vsock header before anything else looks at it. The
// verdict says what the receiver must do; the protocol engine acts on it.
//
// Rules (HARDENING.md rows 5, 9 and 14; VIRTIO 1.2 §5.10.6):
//  - Addressing decides identity, so a packet that is not from the configured
//    peer CID to our CID, or that sets the reserved upper 32 CID bits, is
//    dropped silently: answering it would let a guest spoof or probe.
//  - A correctly addressed packet with an unknown type, an unknown op (0 and
//    >7 included), a payload on a non-RW op, a payload over the limit, or a
//    reserved port number (VMADDR_PORT_ANY) is answered with RST.
//  - An RST is never answered with an RST.
#ifndef VRPC_TRANSPORT_VSOCK_WIRE_VALIDATE_H_
#define VRPC_TRANSPORT_VSOCK_WIRE_VALIDATE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {

// Who may talk to whom on one vsock link.
struct AddressPolicy {
  uint64_t local_cid = 0;  // our CID: every packet's dst_cid
  uint64_t peer_cid = 0;   // the only CID we accept as src_cid
  uint32_t max_payload = kMaxPacketPayload;
};

enum class HeaderVerdict {
  kAccept,  // well-formed: hand it to the connection logic
  kDrop,    // ignore silently
  kReset,   // answer with RST (and reset the connection if one matches)
};

struct HeaderCheck {
  HeaderVerdict verdict = HeaderVerdict::kAccept;
  // OK for kAccept; otherwise says what was wrong (kInvalidArgument, or
  // kResourceExhausted for an oversized payload).
  absl::Status reason;
};

// Judges |h| under |policy|. Pure; never fails on any input.
HeaderCheck CheckHeader(const Header& h, const AddressPolicy& policy);

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_WIRE_VALIDATE_H_
