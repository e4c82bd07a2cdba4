// File: transport_vsock/kernel/internal/sockets.h
//
// Thin syscall helpers of the kernel socket transport: socket addresses
// to and from the shared address syntax, non-blocking sockets, errno to
// the Connection contract's terminal statuses, stale Unix socket files.
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKETS_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKETS_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/unique_fd.h"

namespace vrpc {
namespace kernel {
namespace internal {

// A socket address of either family.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// AF_UNIX |path|. kInvalidArgument when empty or longer than sun_path.
absl::StatusOr<SockAddr> UnixAddress(absl::string_view path);
// AF_VSOCK |cid|:|port|.
SockAddr VsockAddress(uint32_t cid, uint32_t port);

// |addr| of a socket of |type| in the shared syntax: "unix:PATH" ("unix:"
// for an unnamed socket; either type), "vsock:CID:PORT" (SOCK_STREAM),
// "vsock-seqpacket:CID:PORT" (SOCK_SEQPACKET); "?" for other families.
std::string FormatSockAddr(const sockaddr* addr, socklen_t len, int type = SOCK_STREAM);
// getpeername / getsockname of |fd|, formatted for its SO_TYPE; "?" on
// error.
std::string PeerAddressOf(int fd);
std::string LocalAddressOf(int fd);

// SO_TYPE of |fd| (SOCK_STREAM, SOCK_SEQPACKET, ...); -1 on error.
int SocketType(int fd);

// A socket of |family| and |type| (SOCK_STREAM or SOCK_SEQPACKET),
// non-blocking and close-on-exec. Errors from socket(2):
// kResourceExhausted for EMFILE/ENFILE/ENOBUFS/ENOMEM; for AF_VSOCK
// SOCK_SEQPACKET, kUnimplemented for ESOCKTNOSUPPORT/EPROTONOSUPPORT/
// EAFNOSUPPORT (a kernel without vsock SEQPACKET, Linux < 5.14);
// otherwise absl::ErrnoToStatus.
absl::StatusOr<UniqueFd> NewSocket(int family, int type);
inline absl::StatusOr<UniqueFd> NewStreamSocket(int family) {
  return NewSocket(family, SOCK_STREAM);
}

// The terminal status for socket error |err| (a connect result, SO_ERROR,
// or a failed recv/send) in the Connection contract's terms:
// DEADLINE_EXCEEDED for ETIMEDOUT, UNIMPLEMENTED for ESOCKTNOSUPPORT (a
// vsock transport that does not carry SOCK_SEQPACKET, reported by
// connect(2)), UNAVAILABLE for everything else (refused, reset, no
// device, broken pipe, ...). |context| leads the message ("connect to
// unix:/x").
absl::Status SocketErrorStatus(int err, absl::string_view context);

// SO_ERROR of |fd| (0 when none, or errno of getsockopt itself).
int PendingSocketError(int fd);

// Makes |path| free for bind(2): nothing there is fine; a socket nobody
// listens on (connect refused) is unlinked; a socket somebody listens on
// is kAlreadyExists; anything else (a file, a directory) is
// kAlreadyExists and left alone.
absl::Status RemoveStaleUnixSocket(const std::string& path);

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKETS_H_
