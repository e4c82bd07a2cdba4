// File: transport_vsock/kernel/internal/hybrid_reply.h
//
// The client half of the hybrid-vsock handshake (Firecracker,
// vhost-device-vsock, vrpc's host agent): the request line and the parser
// of the one-line reply. Pure: no I/O.
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_HYBRID_REPLY_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_HYBRID_REPLY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace kernel {
namespace internal {

// The longest reply line accepted, newline included.
inline constexpr size_t kMaxHybridReplyLine = 64;

// "CONNECT <port>\n".
std::string HybridConnectLine(uint32_t port);

// What the bytes received so far say about the reply.
struct HybridReply {
  bool complete = false;  // a whole line arrived (and parsed: see below)
  uint32_t port = 0;      // the number in "OK <n>" (host or guest port)
  size_t line_bytes = 0;  // bytes of the line, '\n' included; the rest is data
};

// Looks for the reply at the start of |received| (bytes after the first
// '\n' are the stream's data and are not looked at). Returns
// complete = false while no '\n' arrived. Accepts "OK <decimal u32>" with an
// optional trailing '\r': Firecracker answers with the host-side port it
// allocated, vhost-device-vsock and vrpc with the guest port, so the number
// is reported, not checked. kUnavailable for any other line, or for no '\n'
// within kMaxHybridReplyLine bytes; the message quotes the line (escaped).
absl::StatusOr<HybridReply> ParseHybridReply(absl::string_view received);

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_HYBRID_REPLY_H_
