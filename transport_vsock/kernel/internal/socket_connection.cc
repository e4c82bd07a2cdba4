#include "transport_vsock/kernel/internal/socket_connection.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
// clang-format off: vm_sockets.h needs sys/socket.h first.
#include <linux/vm_sockets.h>
// clang-format on

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transport_vsock/kernel/internal/hybrid_reply.h"

namespace vrpc {
namespace kernel {
namespace internal {
namespace {

using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;

// A full Unix listen backlog makes a non-blocking connect fail with EAGAIN
// and nothing to poll for: try again after this long.
constexpr absl::Duration kBacklogRetry = absl::Milliseconds(10);
// A watch mask that fires only on POLLHUP / POLLERR.
constexpr uint32_t kHangup = POLLHUP;
// iovecs per sendmsg(2).
constexpr size_t kMaxIov = 64;

int SocketFamily(int fd) {
  int family = 0;
  socklen_t len = sizeof(family);
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return -1;
  return family;
}

uint32_t VsockBufferSize(int fd) {
  uint64_t size = 0;
  socklen_t len = sizeof(size);
  if (::getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &size, &len) != 0) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(size, UINT32_MAX));
}

// Seqpacket receive room when the kernel cannot peek a record's length:
// AF_VSOCK refuses records longer than the receiver's buffer size
// (EMSGSIZE at the sender), so that, capped; AF_UNIX peeks on every kernel.
constexpr size_t kDefaultMaxRecordIn = 256 * 1024;

// Consecutive empty records read in one go before yielding to the reactor.
constexpr int kMaxEmptyRecords = 1024;

// The peer shut down its sending side (or is gone): a recv(2) of 0 on a
// seqpacket socket is then the end of the stream, not an empty record.
bool ReadSideShutDown(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool WritableNow(int fd) {
  pollfd p{fd, POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0;
}

}  // namespace

SocketConnection::SocketConnection(UniqueFd fd, io::Reactor& reactor,
                                   const KernelOptions& options)
    : reactor_(reactor),
      options_(options),
      fd_(std::move(fd)),
      rx_(std::max(options.rx_buffer_bytes, kMaxHybridReplyLine), options.rx_chunk_bytes) {
  vsock_ = SocketFamily(fd_.get()) == AF_VSOCK;
  seqpacket_ = SocketType(fd_.get()) == SOCK_SEQPACKET;
  if (vsock_) local_buf_alloc_ = VsockBufferSize(fd_.get());
  max_record_in_ = kDefaultMaxRecordIn;
  if (vsock_ && local_buf_alloc_ > 0) {
    max_record_in_ = std::min<size_t>(local_buf_alloc_, RxBuffer::kMaxRecordBytes);
  }
}

void SocketConnection::DisableRecordPeekForTesting(size_t max_record_in) {
  rx_.DisableRecordPeek();
  max_record_in_ = max_record_in;
}

std::unique_ptr<SocketConnection> SocketConnection::Open(UniqueFd fd, io::Reactor& reactor,
                                                         const KernelOptions& options) {
  std::unique_ptr<SocketConnection> c(new SocketConnection(std::move(fd), reactor, options));
  c->peer_address_ = PeerAddressOf(c->fd_.get());
  c->UpdateWatch();
  c->ScheduleDrain();
  return c;
}

std::unique_ptr<SocketConnection> SocketConnection::Connect(
    UniqueFd fd, const SockAddr& to, std::string peer_address,
    std::optional<uint32_t> hybrid_port, io::Reactor& reactor, const KernelOptions& options) {
  std::unique_ptr<SocketConnection> c(new SocketConnection(std::move(fd), reactor, options));
  c->peer_address_ = std::move(peer_address);
  c->phase_ = Phase::kConnect;
  c->state_ = ConnectionState::kConnecting;
  c->connect_to_ = to;
  c->hybrid_port_ = hybrid_port;
  if (c->vsock_) {
    const timeval tv = absl::ToTimeval(options.connect_timeout);
    (void)::setsockopt(c->fd_.get(), AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
  }
  SocketConnection* self = c.get();
  c->connect_timer_ = reactor.RunAfter(options.connect_timeout, [self, alive = c->alive_] {
    if (!*alive) return;
    self->connect_timer_ = 0;
    if (self->state_ != ConnectionState::kConnecting) return;
    self->Fail(absl::DeadlineExceededError(
        absl::StrCat("connect to ", self->peer_address_, " timed out after ",
                     absl::FormatDuration(self->options_.connect_timeout))));
    self->Drain();
  });
  // connect(2) on the next turn: whatever it says reaches the handler the
  // caller is about to set, and state() stays kConnecting until then.
  reactor.Post([self, alive = c->alive_] {
    if (!*alive || self->phase_ != Phase::kConnect) return;
    self->TryConnect();
    self->UpdateWatch();
    self->Drain();
  });
  return c;
}

SocketConnection::~SocketConnection() {
  Close();
  *alive_ = false;
}

void SocketConnection::SetEventHandler(EventHandler handler) {
  handler_ = std::make_shared<EventHandler>(std::move(handler));
}

// ---------------------------------------------------------------------------
// Connecting

void SocketConnection::TryConnect() {
  if (::connect(fd_.get(), connect_to_.get(), connect_to_.len) == 0 || errno == EISCONN ||
      errno == EINPROGRESS || errno == EINTR) {
    connect_in_flight_ = true;  // completion (or an error) shows as POLLOUT
    return;
  }
  if (errno == EAGAIN) {
    retry_timer_ = reactor_.RunAfter(kBacklogRetry, [this, alive = alive_] {
      if (!*alive) return;
      retry_timer_ = 0;
      TryConnect();
      UpdateWatch();
      Drain();
    });
    return;
  }
  Fail(SocketErrorStatus(errno, absl::StrCat("connect to ", peer_address_)));
}

void SocketConnection::OnConnected() {
  connect_in_flight_ = false;
  if (vsock_) peer_address_ = PeerAddressOf(fd_.get());
  if (!hybrid_port_.has_value()) return BecomeOpen();
  phase_ = Phase::kHandshake;
  handshake_out_ = HybridConnectLine(*hybrid_port_);
  SendHandshake();
}

void SocketConnection::SendHandshake() {
  while (!handshake_out_.empty()) {
    const ssize_t n = ::send(fd_.get(), handshake_out_.data(), handshake_out_.size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      handshake_out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // POLLOUT
    return Fail(SocketErrorStatus(errno, absl::StrCat("hybrid vsock handshake with ",
                                                      peer_address_, ": sending CONNECT")));
  }
}

void SocketConnection::ReadHandshake() {
  const ReadResult r = ReadSocket();
  if (r.err != 0) {
    return Fail(SocketErrorStatus(
        r.err, absl::StrCat("hybrid vsock handshake with ", peer_address_)));
  }
  char head[kMaxHybridReplyLine];
  const size_t n = rx_.queued().CopyTo(
      absl::MakeSpan(reinterpret_cast<uint8_t*>(head), sizeof(head)));
  absl::StatusOr<HybridReply> reply = ParseHybridReply(absl::string_view(head, n));
  if (!reply.ok()) {
    return Fail(absl::UnavailableError(absl::StrCat(peer_address_, ": ", reply.status().message())));
  }
  if (!reply->complete) {
    if (!peer_eof_) return;  // more to come
    return Fail(absl::UnavailableError(absl::StrCat(
        peer_address_, ": hybrid vsock handshake: the peer closed the connection ",
        n == 0 ? "without a reply" : "in the middle of its reply",
        " (nothing listening on the guest port?)")));
  }
  // The rest, if any, is the stream's first data.
  rx_.Drop(reply->line_bytes);
  bytes_received_ -= reply->line_bytes;
  BecomeOpen();
  if (!rx_.empty()) Queue(ConnectionEventType::kReadable);
  if (peer_eof_) {
    Queue(ConnectionEventType::kPeerShutdown);
    if (rx_.empty()) Queue(ConnectionEventType::kReadable);
  }
  MaybeFinishOrderly();
}

void SocketConnection::BecomeOpen() {
  phase_ = Phase::kOpen;
  state_ = ConnectionState::kOpen;
  if (connect_timer_ != 0) reactor_.CancelTimer(connect_timer_);
  connect_timer_ = 0;
  Queue(ConnectionEventType::kConnected);
}

// ---------------------------------------------------------------------------
// Readiness

void SocketConnection::OnReady(uint32_t revents) {
  std::shared_ptr<bool> alive = alive_;
  switch (phase_) {
    case Phase::kConnect:
      if (const int err = PendingSocketError(fd_.get()); err != 0) {
        Fail(SocketErrorStatus(err, absl::StrCat("connect to ", peer_address_)));
      } else {
        OnConnected();
      }
      break;
    case Phase::kHandshake:
      if (!handshake_out_.empty()) {
        SendHandshake();
      } else {
        ReadHandshake();
      }
      break;
    case Phase::kOpen:
      OnOpenReady(revents);
      break;
    case Phase::kDone:
      break;
  }
  UpdateWatch();
  Drain();  // may destroy |this|
}

void SocketConnection::OnOpenReady(uint32_t revents) {
  // POLLHUP: both directions are shut from our side's view (the peer
  // closed, or it shut down writing after we did): nothing more goes out.
  if (revents & POLLHUP) peer_gone_ = true;
  if ((revents & (POLLIN | POLLHUP | POLLERR)) && WantRead()) {
    const ReadResult r = ReadSocket();
    if (r.got > 0) Queue(ConnectionEventType::kReadable);
    if (r.eof) {
      Queue(ConnectionEventType::kPeerShutdown);
      // AtEof() just became true (otherwise kReadable for the unread bytes
      // went out already).
      if (rx_.empty()) Queue(ConnectionEventType::kReadable);
    }
    if (r.err != 0) {
      return Fail(SocketErrorStatus(r.err, absl::StrCat("recv from ", peer_address_)));
    }
    if (r.truncated != 0) {
      return Fail(absl::DataLossError(absl::StrCat(
          "recv from ", peer_address_, ": a record of ", r.truncated,
          " bytes does not fit the receive room (", max_record_in_, " bytes, at most ",
          RxBuffer::kMaxRecordBytes, "); the byte stream is broken")));
    }
  }
  if (revents & POLLERR) {
    if (const int err = PendingSocketError(fd_.get()); err != 0) {
      return Fail(SocketErrorStatus(err, peer_address_));
    }
  }
  if (tx_blocked_ && (revents & (POLLOUT | POLLHUP | POLLERR))) {
    // With the peer gone the next Write() says so (kUnavailable).
    EndBlocked();
    Queue(ConnectionEventType::kWritable);
  }
  MaybeFinishOrderly();
}

ssize_t SocketConnection::RecvSome(size_t* truncated) {
  if (!seqpacket_) return rx_.RecvOnce(fd_.get());
  for (int empty = 0; empty < kMaxEmptyRecords; ++empty) {
    const RxBuffer::RecordResult rec = rx_.RecvRecord(fd_.get(), max_record_in_);
    if (rec.truncated) {
      *truncated = rec.record_len;
      return -1;
    }
    // recv(2) says 0 both at the end of the stream and for an empty record
    // (which carries no bytes of the stream: skip it).
    if (rec.n != 0 || ReadSideShutDown(fd_.get())) return rec.n;
  }
  errno = EAGAIN;  // more empty records: on a later turn
  return -1;
}

SocketConnection::ReadResult SocketConnection::ReadSocket() {
  ReadResult r;
  while (!rx_.full() && !peer_eof_) {
    const ssize_t n = RecvSome(&r.truncated);
    if (r.truncated != 0) break;
    if (n > 0) {
      r.got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      peer_eof_ = true;
      r.eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) r.err = errno;
    break;
  }
  bytes_received_ += r.got;
  return r;
}

void SocketConnection::MaybeFinishOrderly() {
  if (phase_ != Phase::kOpen || !peer_eof_ || !rx_.empty() || !(write_shut_ || peer_gone_)) {
    return;
  }
  phase_ = Phase::kDone;
  state_ = ConnectionState::kClosed;
  status_ = absl::OkStatus();
  ReleaseFd();
  Queue(ConnectionEventType::kClosed);
}

void SocketConnection::Fail(absl::Status status) {
  if (phase_ == Phase::kDone) return;
  phase_ = Phase::kDone;
  state_ = ConnectionState::kClosed;
  status_ = std::move(status);
  ReleaseFd();
  Queue(ConnectionEventType::kClosed, status_);
}

void SocketConnection::ReleaseFd() {
  if (watch_ != 0) reactor_.Unwatch(watch_);
  watch_ = 0;
  watched_ = 0;
  if (connect_timer_ != 0) reactor_.CancelTimer(connect_timer_);
  if (retry_timer_ != 0) reactor_.CancelTimer(retry_timer_);
  connect_timer_ = retry_timer_ = 0;
  EndBlocked();
  fd_.Reset();
}

void SocketConnection::EndBlocked() {
  if (!tx_blocked_) return;
  tx_blocked_ = false;
  time_blocked_ += reactor_.Now() - blocked_since_;
}

bool SocketConnection::WantRead() const {
  return phase_ == Phase::kOpen && !peer_eof_ && !rx_.full();
}

void SocketConnection::UpdateWatch() {
  uint32_t want = 0;
  switch (phase_) {
    case Phase::kConnect:
      if (connect_in_flight_) want = io::kWritable;
      break;
    case Phase::kHandshake:
      want = handshake_out_.empty() ? io::kReadable : io::kWritable;
      break;
    case Phase::kOpen:
      if (WantRead()) want |= io::kReadable;
      if (tx_blocked_ && !peer_gone_) want |= io::kWritable;
      // Neither: still learn of a hang-up or an error (poll reports only
      // those for this mask), e.g. the peer closing after its EOF was read.
      if (want == 0 && !peer_gone_) want = kHangup;
      break;
    case Phase::kDone:
      break;
  }
  if (want == watched_) return;
  if (watch_ != 0) reactor_.Unwatch(watch_);
  watch_ = 0;
  watched_ = want;
  if (want == 0) return;
  absl::StatusOr<io::WatchId> id =
      reactor_.Watch(fd_.get(), want, [this, alive = alive_](uint32_t revents) {
        if (*alive) OnReady(revents);
      });
  if (!id.ok()) {
    watched_ = 0;
    return Fail(absl::UnavailableError(
        absl::StrCat(peer_address_, ": cannot watch the socket: ", id.status().message())));
  }
  watch_ = *id;
}

// ---------------------------------------------------------------------------
// Events

void SocketConnection::Queue(ConnectionEventType type, absl::Status status) {
  if (app_closed_) return;
  pending_.push_back(ConnectionEvent{type, std::move(status)});
}

void SocketConnection::Drain() {
  std::shared_ptr<bool> alive = alive_;
  while (!pending_.empty() && !app_closed_) {
    ConnectionEvent e = std::move(pending_.front());
    pending_.pop_front();
    if (handler_ == nullptr || !*handler_) continue;
    std::shared_ptr<EventHandler> keep = handler_;
    (*keep)(e);
    if (!*alive) return;
  }
}

void SocketConnection::ScheduleDrain() {
  if (drain_posted_ || pending_.empty()) return;
  drain_posted_ = true;
  reactor_.Post([this, alive = alive_] {
    if (!*alive) return;
    drain_posted_ = false;
    Drain();
  });
}

// ---------------------------------------------------------------------------
// Application calls

absl::StatusOr<SliceChain> SocketConnection::Read(size_t max) {
  if (app_closed_) return absl::FailedPreconditionError("connection closed by the application");
  SliceChain out = rx_.Take(max);
  bytes_read_ += out.size();
  if (!out.empty()) {
    MaybeFinishOrderly();
    UpdateWatch();  // room again: read the socket
    ScheduleDrain();
  }
  return out;
}

bool SocketConnection::AtEof() const {
  if (app_closed_) return true;
  return rx_.empty() && (peer_eof_ || phase_ == Phase::kDone);
}

absl::Status SocketConnection::WriteState() const {
  if (app_closed_) return absl::FailedPreconditionError("connection closed by the application");
  if (phase_ == Phase::kDone) {
    return status_.ok() ? absl::FailedPreconditionError("connection closed")
                        : absl::UnavailableError(status_.message());
  }
  if (phase_ != Phase::kOpen) return absl::FailedPreconditionError("not connected yet");
  return absl::OkStatus();
}

ssize_t SocketConnection::SendSome(const SliceChain& data) {
  const size_t max_bytes = seqpacket_ ? record_out_ : SIZE_MAX;
  iovec iov[kMaxIov];
  size_t n_iov = 0, bytes = 0;
  for (const Slice& s : data.slices()) {
    if (n_iov == kMaxIov || bytes == max_bytes) break;
    const size_t take = std::min(s.size(), max_bytes - bytes);
    iov[n_iov++] = iovec{const_cast<uint8_t*>(s.data()), take};
    bytes += take;
  }
  // A non-blocking vsock SEQPACKET send that runs out of the peer's credit
  // part way sends a prefix of the record and says EAGAIN, not how much
  // went out. With no room at all it sends nothing: so send only when
  // POLLOUT says there is room, and take an EAGAIN after that as a cut
  // record (the caller fails the connection).
  if (seqpacket_ && vsock_ && !WritableNow(fd_.get())) {
    errno = EAGAIN;
    return -1;
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n_iov;
  const ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0 && seqpacket_ && vsock_ && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    errno = EBADMSG;  // a partial record may be on the wire
  }
  return n;
}

absl::StatusOr<size_t> SocketConnection::Write(SliceChain& data) {
  if (absl::Status s = WriteState(); !s.ok()) return s;
  if (write_shut_) return absl::FailedPreconditionError("write side shut down");
  if (peer_gone_) return absl::UnavailableError("the peer no longer receives");
  size_t sent = 0;
  while (!data.empty() && !tx_blocked_) {
    const ssize_t n = SendSome(data);
    if (n > 0) {
      data.RemovePrefix(static_cast<size_t>(n));
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // The socket takes smaller records only. Linux before 6.2 or so
    // reports vsock's EMSGSIZE (a record longer than the peer's buffer) as
    // ENOMEM.
    if (n < 0 && seqpacket_ && record_out_ > 1 &&
        (errno == EMSGSIZE || (vsock_ && errno == ENOMEM))) {
      record_out_ /= 2;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      tx_blocked_ = true;
      blocked_since_ = reactor_.Now();
      Queue(ConnectionEventType::kCreditBlocked);
      break;
    }
    const int err = n < 0 ? errno : EPIPE;
    if (err == EPIPE) {
      peer_gone_ = true;
      MaybeFinishOrderly();
    } else if (err == EBADMSG) {
      Fail(absl::DataLossError(absl::StrCat(
          "send to ", peer_address_,
          ": the kernel ran out of the peer's credit in the middle of a SOCK_SEQPACKET "
          "record and did not say how much of it went out; the byte stream is broken")));
    } else {
      Fail(SocketErrorStatus(err, absl::StrCat("send to ", peer_address_)));
    }
    if (sent == 0) {
      UpdateWatch();
      ScheduleDrain();
      return err == EPIPE ? absl::UnavailableError("the peer no longer receives")
                          : absl::UnavailableError(status_.message());
    }
    break;
  }
  bytes_written_ += sent;
  UpdateWatch();
  ScheduleDrain();
  return sent;
}

absl::Status SocketConnection::ShutdownWrite() {
  if (absl::Status s = WriteState(); !s.ok()) return s;
  if (write_shut_) return absl::OkStatus();
  write_shut_ = true;
  EndBlocked();
  absl::Status result;
  if (::shutdown(fd_.get(), SHUT_WR) != 0) {
    result = SocketErrorStatus(errno, absl::StrCat("shutdown to ", peer_address_));
  }
  MaybeFinishOrderly();
  UpdateWatch();
  ScheduleDrain();
  return result;
}

void SocketConnection::Close() {
  handler_.reset();  // no events after Close
  app_closed_ = true;
  pending_.clear();
  if (phase_ != Phase::kDone) {
    phase_ = Phase::kDone;
    state_ = ConnectionState::kClosed;
    status_ = absl::CancelledError("closed by the application");
  }
  ReleaseFd();
  rx_.Clear();
}

transport::CreditInfo SocketConnection::credit() const {
  transport::CreditInfo out;
  if (vsock_) {
    // The kernel keeps the peer's counters to itself; ours are known.
    out.local_buf_alloc = local_buf_alloc_;
    out.local_fwd_cnt = static_cast<uint32_t>(bytes_received_);
    out.tx_cnt = static_cast<uint32_t>(bytes_written_);
  }
  out.blocked = tx_blocked_;
  out.time_blocked = time_blocked_;
  if (tx_blocked_) out.time_blocked += reactor_.Now() - blocked_since_;
  return out;
}

transport::ConnectionStats SocketConnection::stats() const {
  transport::ConnectionStats out;
  out.bytes_read = bytes_read_;
  out.bytes_written = bytes_written_;
  // The kernel copies every payload byte: into our chunks on recv, out of
  // the caller's Slices on send.
  out.rx_bytes_copied = bytes_received_;
  out.tx_bytes_copied = bytes_written_;
  return out;
}

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
