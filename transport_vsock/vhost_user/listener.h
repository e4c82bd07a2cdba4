// File: transport_vsock/vhost_user/listener.h
//
// Listener: the listening AF_UNIX socket a vhost-user frontend connects to
// (QEMU: -chardev socket,path=PATH without server=on). One frontend is
// served at a time: the caller accepts one, gives it to Backend::Attach(),
// and accepts the next only after Backend::Disconnect(); a second frontend
// waits in the backlog meanwhile.
//
// Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_LISTENER_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_LISTENER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"

namespace vrpc {
namespace vhost_user {

class Listener {
 public:
  // Binds and listens on |path| (non-blocking, close-on-exec). A stale socket
  // left at |path| by a dead process (connect() is refused) is unlinked
  // first. Returns kAlreadyExists if |path| is a live socket (someone
  // accepts on it) or not a socket at all (never deleted),
  // kInvalidArgument if |path| does not fit sockaddr_un, errno codes
  // otherwise.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Listener>> Create(
      const std::string& path);

  // Closes the socket and unlinks |path| if it is still the socket this
  // Listener created.
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // The listening socket (owned), for a reactor's watch: readable when a
  // frontend waits.
  int fd() const { return socket_.get(); }
  const std::string& path() const { return path_; }

  // Accepts one waiting frontend without blocking; the returned socket is
  // close-on-exec and blocking (Backend reads with MSG_DONTWAIT anyway).
  // kUnavailable when nobody waits.
  [[nodiscard]] absl::StatusOr<UniqueFd> Accept();

  // Waits up to |timeout| for a frontend, then accepts it.
  // kDeadlineExceeded if none came.
  [[nodiscard]] absl::StatusOr<UniqueFd> AcceptWithTimeout(
      absl::Duration timeout);

 private:
  Listener(UniqueFd socket, std::string path, uint64_t dev, uint64_t ino)
      : socket_(std::move(socket)), path_(std::move(path)), dev_(dev), ino_(ino) {}

  UniqueFd socket_;
  std::string path_;
  uint64_t dev_;
  uint64_t ino_;
};

}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_LISTENER_H_
