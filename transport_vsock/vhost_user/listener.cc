#include "transport_vsock/vhost_user/listener.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace vhost_user {
namespace {

absl::StatusOr<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path must be 1..", sizeof(addr.sun_path) - 1, " bytes: ",
        path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Removes a socket file left behind by a dead backend. Refuses to touch a
// non-socket or a socket somebody still accepts on.
absl::Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, absl::StrCat("lstat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " exists and is not a socket"));
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return absl::ErrnoToStatus(errno, "socket");
  int r;
  do {
    r = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr),
                  sizeof(addr));
  } while (r != 0 && errno == EINTR);
  if (r == 0 || errno == EAGAIN) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " is a live socket: another backend listens"));
  }
  if (errno != ECONNREFUSED) {
    return absl::ErrnoToStatus(errno, absl::StrCat("probing ", path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("unlink ", path));
  }
  VRPC_LOG(INFO) << "removed stale vhost-user socket " << path;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Listener>> Listener::Create(
    const std::string& path) {
  absl::StatusOr<sockaddr_un> addr = MakeAddress(path);
  if (!addr.ok()) return addr.status();
  if (absl::Status s = RemoveStaleSocket(path, *addr); !s.ok()) return s;
  UniqueFd sock(
      ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) return absl::ErrnoToStatus(errno, "socket");
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&*addr),
             sizeof(*addr)) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", path));
  }
  // One frontend is served at a time; a second waits here.
  if (::listen(sock.get(), 1) != 0) {
    const int err = errno;
    (void)::unlink(path.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("listen ", path));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  }
  return std::unique_ptr<Listener>(
      new Listener(std::move(sock), path, st.st_dev, st.st_ino));
}

Listener::~Listener() {
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
      st.st_ino == ino_) {
    (void)::unlink(path_.c_str());
  }
}

absl::StatusOr<UniqueFd> Listener::Accept() {
  for (;;) {
    const int fd = ::accept4(socket_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::UnavailableError("no vhost-user frontend waiting");
    }
    return absl::ErrnoToStatus(errno, "accept4");
  }
}

absl::StatusOr<UniqueFd> Listener::AcceptWithTimeout(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<UniqueFd> fd = Accept();
    if (fd.ok() || fd.status().code() != absl::StatusCode::kUnavailable) {
      return fd;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no vhost-user frontend connected");
    }
    pollfd pfd = {socket_.get(), POLLIN, 0};
    const int ms = static_cast<int>(
        absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    if (::poll(&pfd, 1, ms) < 0 && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "poll on listener");
    }
  }
}

}  // namespace vhost_user
}  // namespace vrpc
