// File: transport_vsock/kernel/options.h
//
// Tuning of the kernel socket transport (kernel_transport.h).
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_OPTIONS_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_OPTIONS_H_

#include <cstddef>

#include "absl/time/time.h"

namespace vrpc {
namespace kernel {

struct KernelOptions {
  // At most this many received bytes are read from the socket ahead of the
  // application; beyond it the connection stops reading (the kernel's
  // buffer, and then the peer, hold the rest).
  size_t rx_buffer_bytes = 256 * 1024;
  // Received bytes are read into heap chunks of this size; a Slice returned
  // by Read() keeps its chunk alive.
  size_t rx_chunk_bytes = 64 * 1024;
  // Bounds the whole connecting phase: connect(2) in flight, a full Unix
  // backlog (retried), and the hybrid CONNECT/OK handshake. Expiry closes
  // the connection with DEADLINE_EXCEEDED. For AF_VSOCK it is also set as
  // SO_VM_SOCKETS_CONNECT_TIMEOUT (the kernel's default is 2 s).
  absl::Duration connect_timeout = absl::Seconds(10);
  // listen(2) backlog: peers beyond it wait in connect (Unix) or are
  // refused (vsock).
  int listen_backlog = 128;
};

}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_OPTIONS_H_
