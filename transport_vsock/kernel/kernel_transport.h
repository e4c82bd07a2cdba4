// File: transport_vsock/kernel/kernel_transport.h
//
// The kernel socket transport: core/transport endpoints over the kernel's
// stream and seqpacket sockets, driven by an io::Reactor's fd readiness.
//
//   address kind     ListenKernel                 KernelConnector
//   kUnix            AF_UNIX, bind + listen       AF_UNIX connect
//   kVsock           AF_VSOCK, bind + listen      AF_VSOCK connect (CID:PORT)
//   kVsockSeqpacket  AF_VSOCK SOCK_SEQPACKET, as kVsock; still a byte stream
//                    to the application (records in order, concatenated)
//   kHvsock       kUnimplemented               AF_UNIX connect to the VMM's
//                                              socket, "CONNECT <port>\n",
//                                              one "OK <n>\n" line back
//
// What the kernel shows and how it maps onto Connection events, credit()
// and stats() is in docs/transports.md, "Kernel sockets". In short: every
// payload byte is copied by the kernel once each way (counted in stats());
// received bytes are read ahead of the application up to
// KernelOptions::rx_buffer_bytes, no further; a send that hits EAGAIN is
// kCreditBlocked until POLLOUT; refused / reset / no device are kClosed
// with UNAVAILABLE, a timed-out connect DEADLINE_EXCEEDED.
//
// Threading: call on |reactor|'s thread (or before it runs); the endpoints
// and their connections belong to it (connection.h).
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_KERNEL_TRANSPORT_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_KERNEL_TRANSPORT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "core/io/reactor.h"
#include "core/transport/address.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/kernel/options.h"

namespace vrpc {
namespace kernel {

// Listens at |address| (kUnix, kVsock or kVsockSeqpacket). A Unix path that holds a stale
// socket (nobody listening) is replaced; the listener removes its socket
// file when destroyed. Does not take ownership of |reactor|, which must
// outlive the listener and its connections.
// Errors: kUnimplemented for kHvsock (connect-only: a host serves guest
// connections to port P on the Unix socket "<uds>_P", i.e. unix:<uds>_P);
// kInvalidArgument for other kinds; kUnimplemented for kVsockSeqpacket on a
// kernel without vsock SEQPACKET; kAlreadyExists when the address is in
// use or a non-socket file is at the path; kResourceExhausted when out of
// fds; bind/listen errors as absl::ErrnoToStatus.
absl::StatusOr<std::unique_ptr<transport::Listener>> ListenKernel(
    const transport::Address& address, io::Reactor& reactor, const KernelOptions& options = {});

// A connector to |address| (kUnix, kVsock, kVsockSeqpacket or kHvsock).
// Nothing is opened until Connect(); each Connect() starts one connection in
// kConnecting that reports kConnected, or kClosed (UNAVAILABLE: refused, no
// listener, reset, a hybrid reply other than "OK <n>"; DEADLINE_EXCEEDED:
// connect_timeout; UNIMPLEMENTED: the vsock transport to that CID carries
// no SEQPACKET) on a later reactor turn. Connect() itself fails only
// locally (kResourceExhausted: out of fds; kUnimplemented: no vsock
// SEQPACKET in this kernel). Does not take ownership of |reactor|.
// Errors: kInvalidArgument for other kinds.
absl::StatusOr<std::unique_ptr<transport::Connector>> KernelConnector(
    const transport::Address& address, io::Reactor& reactor, const KernelOptions& options = {});

// An open Connection over |fd|, a connected SOCK_STREAM or SOCK_SEQPACKET
// socket (Unix or vsock; e.g. one end of a socketpair, or a socket accepted
// elsewhere). Takes ownership of |fd| and makes it non-blocking. Does not
// take ownership of |reactor|. kInvalidArgument if |fd| is not a connected
// stream or seqpacket socket.
absl::StatusOr<std::unique_ptr<transport::Connection>> AdoptConnectedSocket(
    UniqueFd fd, io::Reactor& reactor, const KernelOptions& options = {});

}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_KERNEL_TRANSPORT_H_
