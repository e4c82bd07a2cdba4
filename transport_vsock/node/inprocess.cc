#include "transport_vsock/node/inprocess.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace vsock {
namespace {

using transport::ConnectionEventType;
using transport::ConnectionState;

absl::Status NodeGone() { return absl::UnavailableError("the vsock transport is gone"); }

// A terminal engine status as the Connection contract states it: OK for an
// orderly close, DEADLINE_EXCEEDED for a connect timeout, UNAVAILABLE for
// every other end, including a reset for the peer's protocol violation
// (whose engine reason, e.g. kInvalidArgument, becomes the message).
absl::Status TerminalStatus(const Event& e) {
  if (e.type == EventType::kClosed) return e.status;
  if (absl::IsUnavailable(e.status) || absl::IsDeadlineExceeded(e.status)) return e.status;
  if (!e.status.ok()) return absl::UnavailableError(e.status.message());
  return absl::UnavailableError(e.type == EventType::kRefused ? "connection refused"
                                                              : "connection reset");
}

}  // namespace

// ---------------------------------------------------------------------------
// InProcessConnection

InProcessConnection::InProcessConnection(std::shared_ptr<VsockNode*> node, ConnId id,
                                         bool connecting)
    : node_(std::move(node)),
      reactor_((*node_)->reactor()),
      id_(id),
      peer_cid_((*node_)->peer_cid()),
      state_(connecting ? ConnectionState::kConnecting : ConnectionState::kOpen) {
  VsockNode& h = **node_;
  h.Register(id_, this);
  absl::StatusOr<ConnInfo> info = h.engine().GetInfo(id_, h.reactor().Now());
  VRPC_CHECK(info.ok()) << info.status();
  local_port_ = info->local_port;
  peer_port_ = info->peer_port;
  h.by_ports_[PortKey(local_port_, peer_port_)] = this;
}

InProcessConnection::~InProcessConnection() {
  handler_.reset();
  Close();
}

void InProcessConnection::SetEventHandler(EventHandler handler) {
  handler_ = std::make_shared<EventHandler>(std::move(handler));
}

void InProcessConnection::Emit(ConnectionEventType type, absl::Status status) {
  if (handler_ == nullptr || !*handler_) return;
  std::shared_ptr<EventHandler> keep = handler_;
  (*keep)(transport::ConnectionEvent{type, std::move(status)});
  // |this| may be gone now.
}

void InProcessConnection::OnEvent(const Event& e) {
  if (state_ == ConnectionState::kClosed) return;
  switch (e.type) {
    case EventType::kConnected:
      state_ = ConnectionState::kOpen;
      return Emit(ConnectionEventType::kConnected);
    case EventType::kReadable:
      return Emit(ConnectionEventType::kReadable);
    case EventType::kCreditBlocked:
      return Emit(ConnectionEventType::kCreditBlocked);
    case EventType::kCreditRestored:
      return Emit(ConnectionEventType::kWritable);
    case EventType::kPeerShutdown:
      return Emit(ConnectionEventType::kPeerShutdown);
    case EventType::kRefused:
    case EventType::kReset:
    case EventType::kClosed:
      // The engine record stays until Close(): buffered bytes remain
      // readable (acknowledged data is never dropped on our side).
      state_ = ConnectionState::kClosed;
      status_ = TerminalStatus(e);
      return Emit(ConnectionEventType::kClosed, status_);
    default:
      return;
  }
}

absl::StatusOr<SliceChain> InProcessConnection::Read(size_t max) {
  VsockNode* h = node();
  if (h == nullptr) return NodeGone();
  if (!id_.valid() || !h->IsRegistered(id_)) {
    return absl::FailedPreconditionError("connection closed by the application");
  }
  absl::StatusOr<SliceChain> data = h->engine().Read(id_, max, h->actions());
  if (data.ok()) bytes_read_ += data->size();
  h->Flush();  // CREDIT_UPDATE; may run handlers, so |this| is not touched after
  return data;
}

bool InProcessConnection::AtEof() const {
  VsockNode* h = node();
  if (h == nullptr || !h->IsRegistered(id_)) return true;
  return h->engine().AtEof(id_);
}

absl::StatusOr<size_t> InProcessConnection::Write(SliceChain& data) {
  VsockNode* h = node();
  if (h == nullptr) return NodeGone();
  if (!h->IsRegistered(id_)) {
    return absl::FailedPreconditionError("connection closed by the application");
  }
  if (write_shut_) return absl::FailedPreconditionError("write side shut down");
  absl::StatusOr<size_t> sent = h->engine().Send(id_, data, h->reactor().Now(), h->actions());
  if (sent.ok()) bytes_written_ += *sent;
  h->Flush();
  return sent;
}

absl::Status InProcessConnection::ShutdownWrite() {
  VsockNode* h = node();
  if (h == nullptr) return NodeGone();
  if (!h->IsRegistered(id_)) {
    return absl::FailedPreconditionError("connection closed by the application");
  }
  if (write_shut_) return absl::OkStatus();
  absl::Status s = h->engine().Shutdown(id_, kShutdownSend, h->reactor().Now(), h->actions());
  if (s.ok()) write_shut_ = true;
  h->Flush();
  return s;
}

void InProcessConnection::Close() {
  handler_.reset();  // no events after Close
  VsockNode* h = node();
  if (h == nullptr || !h->IsRegistered(id_)) return;
  SaveEngineStats();
  h->Unregister(id_);
  h->by_ports_.erase(PortKey(local_port_, peer_port_));
  if (state_ != ConnectionState::kClosed) {
    state_ = ConnectionState::kClosed;
    status_ = absl::CancelledError("closed by the application");
  }
  h->engine().Close(id_, h->reactor().Now(), h->actions());
  h->Flush();
}

void InProcessConnection::SaveEngineStats() {
  VsockNode* h = node();
  if (h == nullptr) return;
  if (absl::StatusOr<ConnInfo> info = h->engine().GetInfo(id_, h->reactor().Now()); info.ok()) {
    engine_copied_ = info->rx_copied_bytes;
  }
}

Slice InProcessConnection::AllocateWriteBuffer(size_t size, uint8_t** data) {
  VsockNode* h = node();
  if (h == nullptr || h->hooks() == nullptr) return Slice::Allocate(size, data);
  return h->hooks()->AllocateWriteBuffer(size, data);
}

transport::WriteBufferAllocator InProcessConnection::write_buffer_allocator() {
  VsockNode* h = node();
  return h == nullptr || h->hooks() == nullptr ? nullptr : h->hooks()->write_buffer_allocator();
}

transport::CreditInfo InProcessConnection::credit() const {
  transport::CreditInfo out;
  VsockNode* h = node();
  if (h == nullptr) return out;
  absl::StatusOr<ConnInfo> info = h->engine().GetInfo(id_, h->reactor().Now());
  if (!info.ok()) return out;
  out.peer_buf_alloc = info->credit.peer_buf_alloc;
  out.peer_fwd_cnt = info->credit.peer_fwd_cnt;
  out.tx_cnt = info->credit.tx_cnt;
  out.peer_credit = info->credit.peer_credit;
  out.local_buf_alloc = info->credit.buf_alloc;
  out.local_fwd_cnt = info->credit.fwd_cnt;
  out.blocked = info->credit_blocked;
  out.time_blocked = info->time_blocked;
  return out;
}

transport::ConnectionStats InProcessConnection::stats() const {
  transport::ConnectionStats out;
  out.bytes_read = bytes_read_;
  out.bytes_written = bytes_written_;
  uint64_t engine_copied = engine_copied_;
  if (VsockNode* h = node(); h != nullptr && h->IsRegistered(id_)) {
    if (auto info = h->engine().GetInfo(id_, h->reactor().Now()); info.ok()) {
      engine_copied = info->rx_copied_bytes;
    }
  }
  out.rx_bytes_copied = engine_copied + transport_copied_;
  out.tx_bytes_copied = tx_copied_;  // what the transport charged (ChargeCopy)
  return out;
}

std::string InProcessConnection::peer_address() const {
  return absl::StrCat("vsock:", peer_cid_, ":", peer_port_);
}

// ---------------------------------------------------------------------------
// InProcessListener

InProcessListener::InProcessListener(std::shared_ptr<VsockNode*> node, uint32_t port)
    : node_(std::move(node)), reactor_((*node_)->reactor()), port_(port) {
  (*node_)->listeners_[port_] = this;
}

InProcessListener::~InProcessListener() {
  VsockNode* h = *node_;
  if (h == nullptr) return;
  h->listeners_.erase(port_);
  h->engine().Unlisten(port_, h->actions());  // refuses the backlog
  h->Flush();
}

void InProcessListener::SetAcceptHandler(AcceptHandler handler) {
  handler_ = std::make_shared<AcceptHandler>(std::move(handler));
  AcceptPending();
}

void InProcessListener::AcceptPending() {
  VsockNode* h = *node_;
  if (h == nullptr || handler_ == nullptr || !*handler_) return;
  std::shared_ptr<AcceptHandler> keep = handler_;
  std::shared_ptr<VsockNode*> node = node_;
  const uint32_t port = port_;
  // The handler may destroy this listener: only locals below.
  while (*node != nullptr) {
    std::optional<ConnId> id = (*node)->engine().Accept(port);
    if (!id.has_value()) break;
    (*keep)(std::make_unique<InProcessConnection>(node, *id, /*connecting=*/false));
    if (!*keep) break;
  }
}

std::string InProcessListener::address() const {
  VsockNode* h = *node_;
  return absl::StrCat("vsock:", h != nullptr ? h->local_cid() : 0, ":", port_);
}

// ---------------------------------------------------------------------------
// InProcessConnector

InProcessConnector::InProcessConnector(std::shared_ptr<VsockNode*> node, uint32_t peer_port)
    : node_(std::move(node)),
      reactor_((*node_)->reactor()),
      peer_cid_((*node_)->peer_cid()),
      peer_port_(peer_port) {}

absl::StatusOr<std::unique_ptr<transport::Connection>> InProcessConnector::Connect() {
  VsockNode* h = *node_;
  if (h == nullptr) return NodeGone();
  if (h->hooks() != nullptr) {
    if (absl::Status s = h->hooks()->CanConnect(); !s.ok()) return s;
  }
  absl::StatusOr<ConnId> id =
      h->engine().Connect(peer_port_, SocketType::kStream, h->reactor().Now(), h->actions());
  if (!id.ok()) return id.status();
  auto connection = std::make_unique<InProcessConnection>(node_, *id, /*connecting=*/true);
  // Flush from a fresh reactor turn: the caller sets its handler first, so
  // it sees kConnected (or kClosed) however fast the peer answers.
  h->reactor().Post([node = node_] {
    if (*node != nullptr) (*node)->Flush();
  });
  return std::unique_ptr<transport::Connection>(std::move(connection));
}

std::string InProcessConnector::address() const {
  return absl::StrCat("vsock:", peer_cid_, ":", peer_port_);
}

}  // namespace vsock
}  // namespace vrpc
