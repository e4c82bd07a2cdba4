#include "transport_vsock/vhost_user/testing/scripted_frontend.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/base/logging.h"

namespace vrpc {
namespace vhost_user {
namespace testing {
namespace {

// Reads exactly |len| bytes, waiting until |deadline|; closes any
// descriptor that arrives. False on timeout or EOF.
bool ReadFully(int fd, uint8_t* buf, size_t len, absl::Time deadline,
               size_t* fds_seen) {
  size_t got = 0;
  while (got < len) {
    const absl::Duration left = deadline - absl::Now();
    pollfd pfd = {fd, POLLIN, 0};
    const int ms = left > absl::ZeroDuration()
                       ? static_cast<int>(absl::ToInt64Milliseconds(left)) + 1
                       : 0;
    const int r = ::poll(&pfd, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(64 * sizeof(int))];
    iovec iov = {buf + got, len - got};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        ::close(received);
        ++*fds_seen;
      }
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

ScriptedFrontend ScriptedFrontend::CreatePair(UniqueFd* backend_end) {
  int fds[2];
  VRPC_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0)
      << "socketpair: errno " << errno;
  *backend_end = UniqueFd(fds[1]);
  return ScriptedFrontend(UniqueFd(fds[0]));
}

bool ScriptedFrontend::SendRaw(absl::Span<const uint8_t> bytes,
                               absl::Span<const int> fds) {
  size_t sent = 0;
  bool fds_pending = !fds.empty();
  std::vector<unsigned char> control;
  do {
    iovec iov = {const_cast<uint8_t*>(bytes.data()) + sent, bytes.size() - sent};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fds_pending) {
      control.assign(CMSG_SPACE(fds.size() * sizeof(int)), 0);
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    const ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    fds_pending = false;
    sent += static_cast<size_t>(n);
  } while (sent < bytes.size());
  return true;
}

void ScriptedFrontend::SendWithSize(uint32_t request, uint32_t flags,
                                    uint32_t size_field,
                                    absl::Span<const uint8_t> payload,
                                    absl::Span<const int> fds) {
  MessageHeader header;
  header.request = request;
  header.flags = flags;
  header.size = size_field;
  (void)SendRaw(EncodeMessage(header, payload), fds);
}

void ScriptedFrontend::Send(uint32_t request, uint32_t flags,
                            absl::Span<const uint8_t> payload,
                            absl::Span<const int> fds) {
  SendWithSize(request, flags, static_cast<uint32_t>(payload.size()), payload,
               fds);
}

void ScriptedFrontend::SendU64(uint32_t request, uint64_t value, uint32_t flags,
                               absl::Span<const int> fds) {
  Send(request, flags, EncodeU64(value), fds);
}

void ScriptedFrontend::SendState(uint32_t request, uint32_t index, uint32_t num,
                                 uint32_t flags) {
  VringState state;
  state.index = index;
  state.num = num;
  Send(request, flags, EncodeVringState(state));
}

void ScriptedFrontend::SendEmpty(uint32_t request, uint32_t flags) {
  Send(request, flags, {});
}

std::optional<Reply> ScriptedFrontend::ReadReply(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Reply reply;
  uint8_t header[kHeaderSize];
  if (!ReadFully(socket_.get(), header, kHeaderSize, deadline, &reply.fds)) {
    return std::nullopt;
  }
  reply.header = DecodeHeader(header);
  if (reply.header.size > kMaxPayloadSize) return std::nullopt;
  reply.payload.resize(reply.header.size);
  if (reply.header.size > 0 &&
      !ReadFully(socket_.get(), reply.payload.data(), reply.payload.size(),
                 deadline, &reply.fds)) {
    return std::nullopt;
  }
  return reply;
}

bool ScriptedFrontend::Readable() {
  pollfd pfd = {socket_.get(), POLLIN, 0};
  return ::poll(&pfd, 1, 0) > 0;
}

size_t ScriptedFrontend::Drain() {
  size_t total = 0;
  uint8_t buf[4096];
  for (;;) {
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(64 * sizeof(int))];
    iovec iov = {buf, sizeof(buf)};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n =
        ::recvmsg(socket_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n <= 0) return total;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        ::close(received);
      }
    }
    total += static_cast<size_t>(n);
  }
}

void ScriptedFrontend::ShutdownWrite() { ::shutdown(socket_.get(), SHUT_WR); }

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc
