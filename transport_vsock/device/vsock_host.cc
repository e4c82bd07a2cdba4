#include "transport_vsock/device/vsock_host.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/device/connect_line.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace {

// Bytes read from a socket per call, and the most kept waiting for credit.
constexpr size_t kSocketChunk = 64 * 1024;
// Bytes taken from the engine per read, and the most kept waiting for the
// socket.
constexpr size_t kEngineChunk = 256 * 1024;
// iovecs per sendmsg.
constexpr int kMaxIov = 64;

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("Unix socket path \"", path, "\" is ",
                                                   path.empty() ? "empty" : "too long", " (",
                                                   path.size(), " bytes; at most ",
                                                   sizeof(addr.sun_path) - 1, ")"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// A non-blocking connect to a Unix stream socket: immediate for AF_UNIX.
absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("connect ", path));
  }
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------
// Bridge: one Unix socket <-> one engine connection.

class VsockHost::Bridge : public VsockNode::Endpoint {
 public:
  Bridge(VsockHost& host, UniqueFd fd, bool handshake)
      : host_(host), fd_(std::move(fd)), phase_(handshake ? Phase::kReadLine : Phase::kStreaming) {}
  ~Bridge() { StopWatching(); }

  void Attach(ConnId id) {
    id_ = id;
    node().Register(id, this);
  }
  void UpdateWatch();
  void OnSocketReady(uint32_t revents);
  void OnEvent(const Event& e) override;
  void Finish();
  bool done() const { return done_; }

 private:
  enum class Phase { kReadLine, kConnecting, kStreaming };

  VsockNode& node() { return *host_.node_; }
  Engine& engine() { return node().engine(); }
  Actions& actions() { return node().actions(); }
  void ReadHandshake();
  void ReadFromSocket();
  void PushToEngine();
  void PullFromEngine();
  void FlushToSocket();
  void MaybeFinishOrderly();
  void StopWatching();

  VsockHost& host_;
  UniqueFd fd_;
  Phase phase_;
  ConnId id_;
  io::WatchId watch_ = 0;
  uint32_t watching_ = 0;
  LineReader line_;
  SliceChain to_engine_;  // read from the socket, waiting for credit
  SliceChain to_socket_;  // taken from the engine, waiting for the socket
  bool socket_eof_ = false;
  bool sent_shutdown_ = false;
  bool shut_wr_ = false;
  bool done_ = false;
};

void VsockHost::Bridge::StopWatching() {
  if (watch_ != 0) host_.reactor_.Unwatch(watch_);
  watch_ = 0;
  watching_ = 0;
}

void VsockHost::Bridge::UpdateWatch() {
  if (done_) return;
  uint32_t want = 0;
  const bool reading =
      phase_ == Phase::kReadLine || (phase_ == Phase::kStreaming && !socket_eof_);
  if (reading && to_engine_.empty()) want |= io::kReadable;
  if (!to_socket_.empty()) want |= io::kWritable;
  if (want == watching_) return;
  StopWatching();
  if (want == 0) return;
  auto watch = host_.reactor_.Watch(fd_.get(), want, [this](uint32_t revents) {
    OnSocketReady(revents);
    node().Flush();
  });
  if (!watch.ok()) {
    VRPC_LOG(ERROR) << "hybrid socket watch: " << watch.status();
    Finish();
    return;
  }
  watch_ = *watch;
  watching_ = want;
}

void VsockHost::Bridge::OnSocketReady(uint32_t revents) {
  if (done_) return;
  if ((revents & io::kWritable) && !to_socket_.empty()) {
    FlushToSocket();
    // The engine may hold more (the guest is waiting for the credit that
    // consuming it grants): no new guest data will come to wake us.
    if (!done_ && to_socket_.empty() && phase_ == Phase::kStreaming) PullFromEngine();
  }
  if (done_) return;
  if (revents & (io::kReadable | POLLHUP | POLLERR)) {
    if (phase_ == Phase::kReadLine) {
      ReadHandshake();
    } else if (phase_ == Phase::kStreaming && !socket_eof_) {
      ReadFromSocket();
    }
  }
  UpdateWatch();
}

void VsockHost::Bridge::ReadHandshake() {
  char buf[kMaxConnectLine];
  const ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return Finish();
  size_t used = 0;
  auto line = line_.Feed(absl::string_view(buf, static_cast<size_t>(n)), &used);
  if (!line.ok()) return Finish();
  if (used < static_cast<size_t>(n)) {
    to_engine_.Append(Slice::Copy(absl::string_view(buf + used, n - used)));
  }
  if (!line->has_value()) return;
  auto port = ParseConnectLine(**line);
  if (!port.ok()) {
    VRPC_LOG(INFO) << "hybrid client sent a bad handshake: " << port.status();
    return Finish();
  }
  auto id = engine().Connect(*port, SocketType::kStream, host_.reactor_.Now(), actions());
  if (!id.ok()) {
    VRPC_LOG(WARNING) << "hybrid CONNECT " << *port << ": " << id.status();
    return Finish();
  }
  Attach(*id);
  phase_ = Phase::kConnecting;
}

void VsockHost::Bridge::ReadFromSocket() {
  uint8_t* data = nullptr;
  Slice chunk = Slice::Allocate(kSocketChunk, &data);
  const ssize_t n = ::read(fd_.get(), data, kSocketChunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) return Finish();
  if (n == 0) {
    socket_eof_ = true;
  } else {
    to_engine_.Append(chunk.Sub(0, static_cast<size_t>(n)));
  }
  PushToEngine();
}

void VsockHost::Bridge::PushToEngine() {
  if (phase_ != Phase::kStreaming || done_) return;
  if (!to_engine_.empty()) {
    auto sent = engine().Send(id_, to_engine_, host_.reactor_.Now(), actions());
    if (!sent.ok()) return Finish();  // the guest shut down receiving, or the connection died
  }
  if (to_engine_.empty() && socket_eof_ && !sent_shutdown_) {
    sent_shutdown_ = true;
    if (!engine().Shutdown(id_, kShutdownSend, host_.reactor_.Now(), actions()).ok()) {
      return Finish();
    }
  }
  MaybeFinishOrderly();
}

void VsockHost::Bridge::PullFromEngine() {
  while (!done_ && to_socket_.empty()) {
    auto data = engine().Read(id_, kEngineChunk, actions());
    if (!data.ok() || data->empty()) break;
    to_socket_ = *std::move(data);
    FlushToSocket();
  }
  if (!done_ && to_socket_.empty() && engine().AtEof(id_) && !shut_wr_) {
    shut_wr_ = true;
    ::shutdown(fd_.get(), SHUT_WR);
  }
  MaybeFinishOrderly();
}

void VsockHost::Bridge::FlushToSocket() {
  while (!to_socket_.empty()) {
    iovec iov[kMaxIov];
    int count = 0;
    for (const Slice& s : to_socket_.slices()) {
      if (count == kMaxIov) break;
      iov[count++] = {const_cast<uint8_t*>(s.data()), s.size()};
    }
    // sendmsg with MSG_NOSIGNAL, not writev: a host client that went away
    // must be an EPIPE here, not a SIGPIPE for whatever process embeds us.
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) return Finish();  // the host client went away
    to_socket_.RemovePrefix(static_cast<size_t>(n));
  }
}

void VsockHost::Bridge::MaybeFinishOrderly() {
  if (done_ || phase_ != Phase::kStreaming) return;
  if (sent_shutdown_ && shut_wr_ && to_socket_.empty()) Finish();
}

void VsockHost::Bridge::OnEvent(const Event& e) {
  if (done_) return;
  switch (e.type) {
    case EventType::kConnected:
      phase_ = Phase::kStreaming;
      to_socket_.Append(Slice::Copy(FormatOkLine(engine().GetInfo(id_, host_.reactor_.Now())->peer_port)));
      FlushToSocket();
      PushToEngine();
      break;
    case EventType::kCreditRestored:
      PushToEngine();
      break;
    case EventType::kReadable:
    case EventType::kPeerShutdown:
      PullFromEngine();
      break;
    case EventType::kClosed:
      PullFromEngine();
      FlushToSocket();
      Finish();
      break;
    case EventType::kRefused:
    case EventType::kReset:
      Finish();
      break;
    default:
      break;
  }
  UpdateWatch();
}

void VsockHost::Bridge::Finish() {
  if (done_) return;
  done_ = true;
  StopWatching();
  if (id_.valid()) {
    node().Unregister(id_);
    engine().Close(id_, host_.reactor_.Now(), actions());
  }
  fd_.Reset();
  to_engine_.Clear();
  to_socket_.Clear();
}

// ---------------------------------------------------------------------------
// VsockHost

absl::StatusOr<std::unique_ptr<VsockHost>> VsockHost::Create(const VsockHostOptions& options,
                                                             io::Reactor& reactor,
                                                             PacketSink& sink) {
  EngineConfig config = options.engine;
  config.local_cid = kCidHost;
  config.peer_cid = options.guest_cid;
  std::unique_ptr<VsockHost> host(new VsockHost(options, reactor));
  auto node = VsockNode::Create(config, reactor, sink);
  if (!node.ok()) return node.status();
  host->node_ = *std::move(node);
  VsockHost* self = host.get();
  host->node_->SetAfterFlush([self] { self->Reap(); });
  if (!options.uds_path.empty()) {
    if (absl::Status s = host->StartHybridListener(); !s.ok()) return s;
    if (absl::Status s = host->engine().ListenAnyPort(SocketType::kStream,
                                                      options.guest_connect_backlog);
        !s.ok()) {
      return s;
    }
    host->node_->SetIncomingFallback([self](const Event&) { self->AcceptGuestConnections(); });
  }
  return host;
}

VsockHost::VsockHost(const VsockHostOptions& options, io::Reactor& reactor)
    : options_(options), reactor_(reactor) {}

VsockHost::~VsockHost() {
  if (listen_watch_ != 0) reactor_.Unwatch(listen_watch_);
  if (node_ != nullptr) {
    node_->SetAfterFlush(nullptr);
    node_->SetIncomingFallback(nullptr);
  }
  bridges_.clear();  // unwatches and closes every socket
  node_.reset();
  if (listen_fd_.valid()) ::unlink(options_.uds_path.c_str());
}

absl::Status VsockHost::StartHybridListener() {
  auto addr = UnixAddress(options_.uds_path);
  if (!addr.ok()) return addr.status();
  listen_fd_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return absl::ErrnoToStatus(errno, "socket");
  ::unlink(options_.uds_path.c_str());  // a stale socket from an earlier run
  if (::bind(listen_fd_.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", options_.uds_path));
  }
  if (::listen(listen_fd_.get(), 128) != 0) return absl::ErrnoToStatus(errno, "listen");
  auto watch = reactor_.Watch(listen_fd_.get(), io::kReadable, [this](uint32_t) {
    AcceptHybridClients();
    node_->Flush();
  });
  if (!watch.ok()) return watch.status();
  listen_watch_ = *watch;
  return absl::OkStatus();
}

VsockHost::Bridge& VsockHost::AddBridge(UniqueFd fd, bool handshake) {
  auto bridge = std::make_unique<Bridge>(*this, std::move(fd), handshake);
  Bridge& ref = *bridge;
  bridges_.emplace(&ref, std::move(bridge));
  return ref;
}

void VsockHost::AcceptHybridClients() {
  while (true) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno != EAGAIN && errno != EINTR) {
        VRPC_LOG(WARNING) << "accept on " << options_.uds_path << ": " << std::strerror(errno);
      }
      return;
    }
    AddBridge(std::move(fd), /*handshake=*/true).UpdateWatch();
  }
}

void VsockHost::AcceptGuestConnections() {
  Engine& engine = node_->engine();
  Actions& actions = node_->actions();
  while (auto id = engine.Accept(kPortAny)) {
    const uint32_t port = engine.GetInfo(*id, reactor_.Now())->local_port;
    auto fd = ConnectUnix(absl::StrCat(options_.uds_path, "_", port));
    if (!fd.ok()) {
      VRPC_LOG(DEBUG) << "guest connect to port " << port << " refused: " << fd.status();
      engine.Close(*id, reactor_.Now(), actions);  // OP_RST
      continue;
    }
    if (!engine.Respond(*id, actions).ok()) {
      engine.Close(*id, reactor_.Now(), actions);
      continue;
    }
    Bridge& bridge = AddBridge(*std::move(fd), /*handshake=*/false);
    bridge.Attach(*id);
    bridge.UpdateWatch();
  }
}

void VsockHost::OnGuestPacket(const Header& header, SliceChain payload,
                              uint32_t copied_bytes) {
  node_->OnPacket(header, std::move(payload), copied_bytes);
}

void VsockHost::OnTransportReset(const absl::Status& why) { node_->OnTransportReset(why); }

void VsockHost::Reap() {
  for (auto it = bridges_.begin(); it != bridges_.end();) {
    auto next = std::next(it);
    if (it->first->done()) bridges_.erase(it);
    it = next;
  }
}

}  // namespace vsock
}  // namespace vrpc
