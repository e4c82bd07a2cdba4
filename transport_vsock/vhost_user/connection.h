// File: transport_vsock/vhost_user/connection.h
//
// Connection: framed vhost-user messages over one connected AF_UNIX stream
// socket, with descriptors passed as SCM_RIGHTS. Used by the backend for
// requests and replies; symmetric enough for a frontend.
//
// Descriptor ownership: every descriptor the kernel installs while reading a
// message (always with MSG_CMSG_CLOEXEC) is wrapped in a UniqueFd at once, so
// it is closed on every path: in the returned Message, or when Receive fails.
//
// Blocking: Receive never waits for the *first* byte of a message (it returns
// an empty optional instead), so a caller's reactor decides when to read.
// Once a message has started, the rest is awaited with poll() for at most
// |io_timeout|; Send likewise waits at most |io_timeout| for buffer space.
// The socket may be blocking or not: every call uses MSG_DONTWAIT.
//
// Not thread-safe: one thread drives a Connection.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_CONNECTION_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {

class Connection {
 public:
  // Takes ownership of |socket|, a connected AF_UNIX SOCK_STREAM socket.
  // |io_timeout| bounds the wait for the remainder of a started message and
  // for send buffer space (zero: never wait).
  Connection(UniqueFd socket, absl::Duration io_timeout);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The socket, still owned by the Connection (for a reactor's watch).
  int fd() const { return socket_.get(); }

  // Reads one whole message: the 12-byte header, then exactly header.size
  // payload bytes, collecting descriptors from every read. Returns:
  //   an empty optional  no byte was available (nothing consumed);
  //   a Message          header.size <= kMaxPayloadSize, <= kMaxFds fds;
  //   kUnavailable       the peer closed the socket between messages;
  //   kDataLoss          the peer closed it in the middle of a message;
  //   kDeadlineExceeded  the rest of a started message did not arrive within
  //                      io_timeout;
  //   kResourceExhausted more than kMaxFds descriptors (MSG_CTRUNC included);
  //   kInvalidArgument   header.size > kMaxPayloadSize (nothing more read);
  //   other codes        recvmsg/poll errors (ErrnoToStatus).
  // On every error, descriptors already received are closed before return.
  // The header's flags and request are not judged here (see message.h).
  [[nodiscard]] absl::StatusOr<std::optional<Message>> Receive();

  // Writes |header| (whose size must equal payload.size(); CHECKed) and
  // |payload| as one message; |fds| (borrowed, not closed; at most kMaxFds,
  // CHECKed) travel as SCM_RIGHTS with the first byte. MSG_NOSIGNAL: a closed
  // peer gives kUnavailable/EPIPE, never SIGPIPE. Waits at most io_timeout
  // for buffer space (kDeadlineExceeded).
  [[nodiscard]] absl::Status Send(const MessageHeader& header,
                                  absl::Span<const uint8_t> payload,
                                  absl::Span<const int> fds = {});

 private:
  // Reads exactly |len| bytes (len > 0). |started| says whether part of the
  // message was already consumed (then EOF is kDataLoss, and a dry socket is
  // waited for). Sets |*nothing| when not started and no byte was available.
  absl::Status ReadExact(uint8_t* buf, size_t len, bool started,
                         std::vector<UniqueFd>& fds, bool* nothing);
  // One recvmsg; returns bytes read (0 = EOF) or -1 for EAGAIN.
  absl::StatusOr<ssize_t> RecvOnce(uint8_t* buf, size_t len,
                                   std::vector<UniqueFd>& fds);
  // poll() for |events| until |deadline|.
  absl::Status WaitFor(short events, absl::Time deadline);

  UniqueFd socket_;
  absl::Duration io_timeout_;
};

}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_CONNECTION_H_
