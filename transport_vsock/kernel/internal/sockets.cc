#include "transport_vsock/kernel/internal/sockets.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
// clang-format off: vm_sockets.h needs sys/socket.h first.
#include <linux/vm_sockets.h>
// clang-format on

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace kernel {
namespace internal {

absl::StatusOr<SockAddr> UnixAddress(absl::string_view path) {
  SockAddr out;
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
  if (path.empty() || path.size() >= sizeof(un->sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path \"", path,
                                                   "\" is empty or longer than ",
                                                   sizeof(un->sun_path) - 1, " bytes"));
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return out;
}

SockAddr VsockAddress(uint32_t cid, uint32_t port) {
  SockAddr out;
  auto* vm = reinterpret_cast<sockaddr_vm*>(&out.storage);
  vm->svm_family = AF_VSOCK;
  vm->svm_cid = cid;
  vm->svm_port = port;
  out.len = sizeof(sockaddr_vm);
  return out;
}

std::string FormatSockAddr(const sockaddr* addr, socklen_t len, int type) {
  if (addr->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(addr);
    const size_t max = len > offsetof(sockaddr_un, sun_path)
                           ? len - offsetof(sockaddr_un, sun_path)
                           : 0;
    return absl::StrCat("unix:", std::string(un->sun_path, strnlen(un->sun_path, max)));
  }
  if (addr->sa_family == AF_VSOCK && len >= sizeof(sockaddr_vm)) {
    const auto* vm = reinterpret_cast<const sockaddr_vm*>(addr);
    return absl::StrCat(type == SOCK_SEQPACKET ? "vsock-seqpacket:" : "vsock:", vm->svm_cid, ":",
                        vm->svm_port);
  }
  return "?";
}

std::string PeerAddressOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return FormatSockAddr(reinterpret_cast<sockaddr*>(&ss), len, SocketType(fd));
}

std::string LocalAddressOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return FormatSockAddr(reinterpret_cast<sockaddr*>(&ss), len, SocketType(fd));
}

int SocketType(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
  return type;
}

absl::StatusOr<UniqueFd> NewSocket(int family, int type) {
  UniqueFd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.valid()) return fd;
  const int err = errno;
  const std::string what =
      absl::StrCat("socket(", family == AF_VSOCK ? "AF_VSOCK" : "AF_UNIX",
                   type == SOCK_SEQPACKET ? ", SOCK_SEQPACKET)" : ")");
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", std::strerror(err)));
  }
  if (family == AF_VSOCK && type == SOCK_SEQPACKET &&
      (err == ESOCKTNOSUPPORT || err == EPROTONOSUPPORT || err == EAFNOSUPPORT)) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": ", std::strerror(err),
        ": this kernel has no AF_VSOCK SOCK_SEQPACKET (Linux 5.14+ with a transport "
        "that carries it); use vsock: (SOCK_STREAM) instead"));
  }
  return absl::ErrnoToStatus(err, what);
}

absl::Status SocketErrorStatus(int err, absl::string_view context) {
  std::string message = absl::StrCat(context, ": ", std::strerror(err));
  if (err == ETIMEDOUT) return absl::DeadlineExceededError(std::move(message));
  if (err == ESOCKTNOSUPPORT) {
    return absl::UnimplementedError(absl::StrCat(
        message, " (the vsock transport to that CID does not carry SOCK_SEQPACKET)"));
  }
  return absl::UnavailableError(std::move(message));
}

int PendingSocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

absl::Status RemoveStaleUnixSocket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " exists and is not a socket; not removing it"));
  }
  absl::StatusOr<SockAddr> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  // Non-blocking: a Unix connect completes, fails, or (full backlog: a
  // listener is there) says EAGAIN at once.
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  if (::connect(probe.get(), addr->get(), addr->len) == 0 || errno == EAGAIN) {
    return absl::AlreadyExistsError(absl::StrCat(path, ": a process is listening there"));
  }
  if (errno != ECONNREFUSED) {
    return absl::ErrnoToStatus(errno, absl::StrCat("probing ", path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("removing stale socket ", path));
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
