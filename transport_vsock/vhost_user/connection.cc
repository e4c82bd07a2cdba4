#include "transport_vsock/vhost_user/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace vhost_user {
namespace {

// Room for exactly kMaxFds descriptors: one more makes the kernel set
// MSG_CTRUNC (and drop the excess itself).
constexpr size_t kControlSize = CMSG_SPACE(kMaxFds * sizeof(int));

// Moves every SCM_RIGHTS descriptor of |msg| into |fds|. Runs before any
// check, so nothing the kernel installed can leak.
void CollectFds(msghdr& msg, std::vector<UniqueFd>& fds) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    if (c->cmsg_len < CMSG_LEN(0)) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
}

int PollTimeoutMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return ms > 60000 ? 60000 : static_cast<int>(ms);
}

}  // namespace

Connection::Connection(UniqueFd socket, absl::Duration io_timeout)
    : socket_(std::move(socket)), io_timeout_(io_timeout) {}

absl::Status Connection::WaitFor(short events, absl::Time deadline) {
  for (;;) {
    pollfd pfd = {socket_.get(), events, 0};
    const int timeout = PollTimeoutMs(deadline);
    const int r = ::poll(&pfd, 1, timeout);
    if (r > 0) return absl::OkStatus();  // ready, hung up or in error
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return absl::ErrnoToStatus(errno, "poll on vhost-user socket");
    if (timeout == 0 || absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "vhost-user peer stalled for ", absl::FormatDuration(io_timeout_)));
    }
  }
}

absl::StatusOr<ssize_t> Connection::RecvOnce(uint8_t* buf, size_t len,
                                             std::vector<UniqueFd>& fds) {
  alignas(cmsghdr) unsigned char control[kControlSize];
  iovec iov = {buf, len};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(socket_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ssize_t{-1};
    return absl::ErrnoToStatus(errno, "recvmsg on vhost-user socket");
  }
  CollectFds(msg, fds);
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "more than ", kMaxFds, " descriptors attached (MSG_CTRUNC)"));
  }
  if (fds.size() > kMaxFds) {
    return absl::ResourceExhaustedError(
        absl::StrCat(fds.size(), " descriptors attached to one message (max ",
                     kMaxFds, ")"));
  }
  return n;
}

absl::Status Connection::ReadExact(uint8_t* buf, size_t len, bool started,
                                   std::vector<UniqueFd>& fds, bool* nothing) {
  const absl::Time deadline = absl::Now() + io_timeout_;
  size_t got = 0;
  while (got < len) {
    absl::StatusOr<ssize_t> n = RecvOnce(buf + got, len - got, fds);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      if (!started && got == 0) {
        return absl::UnavailableError("vhost-user peer closed the connection");
      }
      return absl::DataLossError(absl::StrCat(
          "vhost-user peer closed the connection mid-message (", got, " of ",
          len, " bytes of this part)"));
    }
    if (*n < 0) {
      if (!started && got == 0) {
        *nothing = true;
        return absl::OkStatus();
      }
      if (absl::Status s = WaitFor(POLLIN, deadline); !s.ok()) return s;
      continue;
    }
    got += static_cast<size_t>(*n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Message>> Connection::Receive() {
  Message message;
  uint8_t header[kHeaderSize];
  bool nothing = false;
  if (absl::Status s = ReadExact(header, kHeaderSize, /*started=*/false,
                                 message.fds, &nothing);
      !s.ok()) {
    return s;  // |message| (and its fds) is destroyed here
  }
  if (nothing) return std::optional<Message>();
  message.header = DecodeHeader(header);
  if (message.header.size > kMaxPayloadSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload of ", message.header.size, " bytes exceeds ",
                     kMaxPayloadSize));
  }
  message.payload.resize(message.header.size);
  if (message.header.size > 0) {
    if (absl::Status s = ReadExact(message.payload.data(), message.header.size,
                                   /*started=*/true, message.fds, &nothing);
        !s.ok()) {
      return s;
    }
  }
  return std::optional<Message>(std::move(message));
}

absl::Status Connection::Send(const MessageHeader& header,
                              absl::Span<const uint8_t> payload,
                              absl::Span<const int> fds) {
  VRPC_CHECK(header.size == payload.size()) << "header.size != payload size";
  VRPC_CHECK(fds.size() <= kMaxFds) << "too many descriptors to send";
  const std::vector<uint8_t> bytes = EncodeMessage(header, payload);
  const absl::Time deadline = absl::Now() + io_timeout_;
  alignas(cmsghdr) unsigned char control[kControlSize];
  size_t sent = 0;
  bool fds_sent = fds.empty();
  while (sent < bytes.size()) {
    iovec iov = {const_cast<uint8_t*>(bytes.data()) + sent, bytes.size() - sent};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds_sent) {
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    const ssize_t n =
        ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (absl::Status s = WaitFor(POLLOUT, deadline); !s.ok()) return s;
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) {
        return absl::UnavailableError("vhost-user peer closed the connection");
      }
      return absl::ErrnoToStatus(errno, "sendmsg on vhost-user socket");
    }
    fds_sent = true;
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace vhost_user
}  // namespace vrpc
