// File: transport_vsock/kernel/internal/socket_listener.h
//
// SocketListener: transport::Listener over a listening kernel socket
// (AF_UNIX or AF_VSOCK; SOCK_STREAM or SOCK_SEQPACKET). Accepts while a handler is set; without one, peers
// wait in the kernel's backlog (KernelOptions::listen_backlog).
//
// Thread-safety: everything on the reactor's thread (listener.h).
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKET_LISTENER_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKET_LISTENER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "core/io/reactor.h"
#include "core/transport/listener.h"
#include "transport_vsock/kernel/internal/sockets.h"
#include "transport_vsock/kernel/options.h"

namespace vrpc {
namespace kernel {
namespace internal {

class SocketListener final : public transport::Listener {
 public:
  // Binds a fresh socket of |addr|'s family and of |type| (SOCK_STREAM or
  // SOCK_SEQPACKET) to |addr| and listens. For
  // AF_UNIX, a stale socket file at the path is removed first (see
  // RemoveStaleUnixSocket) and the file is removed again when the listener
  // goes, if it is still ours. Does not take ownership of |reactor|, which
  // must outlive the listener. Errors: kAlreadyExists (address in use),
  // kResourceExhausted (no fds), kUnimplemented (no vsock SEQPACKET in this
  // kernel), others from bind/listen as absl::ErrnoToStatus.
  static absl::StatusOr<std::unique_ptr<SocketListener>> Create(const SockAddr& addr, int type,
                                                                io::Reactor& reactor,
                                                                const KernelOptions& options);
  // Closes the socket: peers in the backlog are refused (vsock) or see EOF.
  ~SocketListener() override;
  SocketListener(const SocketListener&) = delete;
  SocketListener& operator=(const SocketListener&) = delete;

  io::Reactor& reactor() override { return reactor_; }
  void SetAcceptHandler(AcceptHandler handler) override;
  // "unix:PATH", "vsock:CID:PORT" or "vsock-seqpacket:CID:PORT" (the bound
  // port, if 0xffffffff was asked for).
  std::string address() const override { return address_; }

 private:
  SocketListener(UniqueFd fd, io::Reactor& reactor, const KernelOptions& options);
  void OnReady();
  void UpdateWatch();

  io::Reactor& reactor_;
  const KernelOptions options_;
  UniqueFd fd_;
  std::string address_;
  std::string unix_path_;  // to unlink; empty for vsock
  dev_t unix_dev_ = 0;
  ino_t unix_ino_ = 0;
  std::shared_ptr<AcceptHandler> handler_;
  io::WatchId watch_ = 0;
  io::TimerId retry_timer_ = 0;  // after EMFILE: accept again later
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKET_LISTENER_H_
