#include "transport_vsock/kernel/internal/socket_listener.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/kernel/internal/socket_connection.h"

namespace vrpc {
namespace kernel {
namespace internal {
namespace {

// After running out of fds, accepting waits this long (the pending peer
// would otherwise keep the level-triggered watch firing).
constexpr absl::Duration kAcceptRetry = absl::Milliseconds(100);

}  // namespace

SocketListener::SocketListener(UniqueFd fd, io::Reactor& reactor, const KernelOptions& options)
    : reactor_(reactor), options_(options), fd_(std::move(fd)) {}

absl::StatusOr<std::unique_ptr<SocketListener>> SocketListener::Create(
    const SockAddr& addr, int type, io::Reactor& reactor, const KernelOptions& options) {
  std::string path;
  if (addr.family() == AF_UNIX) {
    path = reinterpret_cast<const sockaddr_un*>(&addr.storage)->sun_path;
    if (absl::Status s = RemoveStaleUnixSocket(path); !s.ok()) return s;
  }
  absl::StatusOr<UniqueFd> fd = NewSocket(addr.family(), type);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<SocketListener> l(new SocketListener(*std::move(fd), reactor, options));
  const std::string what = FormatSockAddr(addr.get(), addr.len, type);
  if (::bind(l->fd_.get(), addr.get(), addr.len) != 0) {
    if (errno == EADDRINUSE) return absl::AlreadyExistsError(absl::StrCat(what, " is in use"));
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", what));
  }
  if (!path.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      l->unix_path_ = path;
      l->unix_dev_ = st.st_dev;
      l->unix_ino_ = st.st_ino;
    }
  }
  if (::listen(l->fd_.get(), options.listen_backlog) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen ", what));
  }
  l->address_ = LocalAddressOf(l->fd_.get());
  return l;
}

SocketListener::~SocketListener() {
  *alive_ = false;
  if (watch_ != 0) reactor_.Unwatch(watch_);
  if (retry_timer_ != 0) reactor_.CancelTimer(retry_timer_);
  fd_.Reset();
  if (!unix_path_.empty()) {
    // Only our own socket file: another listener may have taken the path.
    struct stat st {};
    if (::lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ &&
        st.st_ino == unix_ino_) {
      ::unlink(unix_path_.c_str());
    }
  }
}

void SocketListener::SetAcceptHandler(AcceptHandler handler) {
  handler_ = std::make_shared<AcceptHandler>(std::move(handler));
  UpdateWatch();
}

void SocketListener::UpdateWatch() {
  const bool want = handler_ != nullptr && *handler_ && retry_timer_ == 0;
  if (want == (watch_ != 0)) return;
  if (!want) {
    reactor_.Unwatch(watch_);
    watch_ = 0;
    return;
  }
  absl::StatusOr<io::WatchId> id =
      reactor_.Watch(fd_.get(), io::kReadable, [this, alive = alive_](uint32_t) {
        if (*alive) OnReady();
      });
  if (!id.ok()) {
    VRPC_LOG(ERROR) << address_ << ": cannot watch the listening socket: " << id.status();
    return;
  }
  watch_ = *id;
}

void SocketListener::OnReady() {
  std::shared_ptr<bool> alive = alive_;
  while (handler_ != nullptr && *handler_) {
    UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      VRPC_LOG(WARNING) << address_ << ": accept: " << std::strerror(errno);
      // Out of fds or memory: back off instead of spinning on the backlog.
      retry_timer_ = reactor_.RunAfter(kAcceptRetry, [this, alive] {
        if (!*alive) return;
        retry_timer_ = 0;
        UpdateWatch();
      });
      break;
    }
    std::shared_ptr<AcceptHandler> keep = handler_;
    (*keep)(SocketConnection::Open(std::move(conn), reactor_, options_));
    if (!*alive) return;  // the handler destroyed the listener
  }
  UpdateWatch();
}

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
