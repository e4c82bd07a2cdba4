#include "transport_vsock/kernel/kernel_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
// clang-format off: vm_sockets.h needs sys/socket.h first.
#include <linux/vm_sockets.h>
// clang-format on

#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transport_vsock/kernel/internal/socket_connection.h"
#include "transport_vsock/kernel/internal/socket_listener.h"
#include "transport_vsock/kernel/internal/sockets.h"

namespace vrpc {
namespace kernel {
namespace {

using transport::Address;
using internal::SockAddr;

absl::StatusOr<SockAddr> SocketAddressOf(const Address& address) {
  switch (address.kind) {
    case Address::Kind::kUnix:
    case Address::Kind::kHvsock:
      return internal::UnixAddress(address.path);
    case Address::Kind::kVsock:
    case Address::Kind::kVsockSeqpacket:
      return internal::VsockAddress(static_cast<uint32_t>(address.cid), address.port);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(transport::FormatAddress(address),
                       ": not a kernel socket address (unix, vsock, vsock-seqpacket, hvsock)"));
  }
}

int SocketTypeOf(const Address& address) {
  return address.kind == Address::Kind::kVsockSeqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
}

class KernelSocketConnector final : public transport::Connector {
 public:
  KernelSocketConnector(const Address& address, const SockAddr& to, io::Reactor& reactor,
                        const KernelOptions& options)
      : address_(address),
        text_(transport::FormatAddress(address)),
        to_(to),
        reactor_(reactor),
        options_(options) {}

  io::Reactor& reactor() override { return reactor_; }
  std::string address() const override { return text_; }

  absl::StatusOr<std::unique_ptr<transport::Connection>> Connect() override {
    absl::StatusOr<UniqueFd> fd = internal::NewSocket(to_.family(), SocketTypeOf(address_));
    if (!fd.ok()) return fd.status();
    std::optional<uint32_t> hybrid_port;
    if (address_.kind == Address::Kind::kHvsock) hybrid_port = address_.port;
    return std::unique_ptr<transport::Connection>(internal::SocketConnection::Connect(
        *std::move(fd), to_, text_, hybrid_port, reactor_, options_));
  }

 private:
  const Address address_;
  const std::string text_;
  const SockAddr to_;
  io::Reactor& reactor_;
  const KernelOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<transport::Listener>> ListenKernel(const Address& address,
                                                                  io::Reactor& reactor,
                                                                  const KernelOptions& options) {
  if (address.kind == Address::Kind::kHvsock) {
    return absl::UnimplementedError(absl::StrCat(
        transport::FormatAddress(address),
        ": hybrid vsock is connect-only; the VMM forwards guest connections to host port P "
        "to the Unix socket <uds>_P: listen on unix:",
        address.path, "_", address.port, " instead"));
  }
  absl::StatusOr<SockAddr> addr = SocketAddressOf(address);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<std::unique_ptr<internal::SocketListener>> l =
      internal::SocketListener::Create(*addr, SocketTypeOf(address), reactor, options);
  if (!l.ok()) return l.status();
  return std::unique_ptr<transport::Listener>(*std::move(l));
}

absl::StatusOr<std::unique_ptr<transport::Connector>> KernelConnector(
    const Address& address, io::Reactor& reactor, const KernelOptions& options) {
  absl::StatusOr<SockAddr> addr = SocketAddressOf(address);
  if (!addr.ok()) return addr.status();
  return std::unique_ptr<transport::Connector>(
      new KernelSocketConnector(address, *addr, reactor, options));
}

absl::StatusOr<std::unique_ptr<transport::Connection>> AdoptConnectedSocket(
    UniqueFd fd, io::Reactor& reactor, const KernelOptions& options) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      (type != SOCK_STREAM && type != SOCK_SEQPACKET)) {
    return absl::InvalidArgumentError("not a stream or seqpacket socket");
  }
  sockaddr_storage peer{};
  len = sizeof(peer);
  if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a connected socket: ", std::strerror(errno)));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK)");
  }
  return std::unique_ptr<transport::Connection>(
      internal::SocketConnection::Open(std::move(fd), reactor, options));
}

}  // namespace kernel
}  // namespace vrpc
