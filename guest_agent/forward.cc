// File: guest_agent/forward.cc
//
// Forward: one TCP connection inside the guest, spliced to the call. This
// handler's thread copies socket -> responses; a second thread copies
// requests -> socket and forwards the client's half-close as shutdown(WR).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/unique_fd.h"
#include "guest_agent/agent_service.h"

namespace vrpc {
namespace guest_agent {
namespace {

constexpr size_t kChunk = 64 * 1024;

absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint32_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" is not an IPv4 address"));
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return absl::ErrnoToStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    const std::string what = absl::StrCat("connect to ", host, ":", port);
    return err == ECONNREFUSED ? absl::UnavailableError(absl::StrCat(what, ": refused"))
                               : absl::ErrnoToStatus(err, what);
  }
  return fd;
}

}  // namespace

absl::Status AgentService::Forward(
    rpc::ServerContext* context,
    rpc::ServerReaderWriter<agent::ForwardResponse, agent::ForwardRequest>* stream) {
  agent::ForwardRequest first;
  if (!stream->Read(&first) || !first.has_port()) {
    return absl::InvalidArgumentError("the first Forward request must name a port");
  }
  if (first.port() == 0 || first.port() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port ", first.port()));
  }
  auto sock = ConnectTcp(first.host().empty() ? "127.0.0.1" : first.host(), first.port());
  if (!sock.ok()) return sock.status();
  const int fd = sock->get();

  std::atomic<bool> upstream_failed{false};
  std::thread requests([&] {
    agent::ForwardRequest req;
    while (stream->Read(&req)) {
      const std::string& d = req.data();
      size_t off = 0;
      while (off < d.size()) {
        ssize_t n = ::send(fd, d.data() + off, d.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          upstream_failed.store(true);
          return;
        }
        off += static_cast<size_t>(n);
      }
    }
    ::shutdown(fd, SHUT_WR);  // the client's half-close
  });

  std::vector<char> buf(kChunk);
  absl::Status result;
  for (;;) {
    if (context->IsCancelled()) {
      result = absl::CancelledError("the call ended");
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = absl::ErrnoToStatus(errno, "the forwarded connection failed");
      break;
    }
    if (n == 0) break;  // the service closed: end the stream
    agent::ForwardResponse r;
    r.set_data(buf.data(), static_cast<size_t>(n));
    if (!stream->Write(r)) {
      result = absl::CancelledError("the client went away");
      break;
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  stream->CloseReads();
  requests.join();
  if (result.ok() && upstream_failed.load()) {
    result = absl::UnavailableError("the forwarded connection stopped taking data");
  }
  return result;
}

}  // namespace guest_agent
}  // namespace vrpc
