#include "transport_vsock/device/inprocess.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace vsock {
namespace {

using transport::ConnectionEventType;
using transport::ConnectionState;

uint64_t PortKey(uint32_t local_port, uint32_t peer_port) {
  return (uint64_t{local_port} << 32) | peer_port;
}

absl::Status HostGone() { return absl::UnavailableError("the VM's vsock device is gone"); }

// A terminal engine status as the Connection contract states it.
absl::Status TerminalStatus(const Event& e) {
  if (e.type == EventType::kClosed) return e.status;
  if (!e.status.ok()) return e.status;
  return absl::UnavailableError(e.type == EventType::kRefused ? "connection refused"
                                                              : "connection reset");
}

}  // namespace

// ---------------------------------------------------------------------------
// InProcessConnection

InProcessConnection::InProcessConnection(std::shared_ptr<VsockHost*> host, ConnId id,
                                         bool connecting)
    : host_(std::move(host)),
      reactor_((*host_)->reactor()),
      id_(id),
      peer_cid_((*host_)->guest_cid()),
      state_(connecting ? ConnectionState::kConnecting : ConnectionState::kOpen) {
  VsockHost& h = **host_;
  h.by_conn_[id_] = this;
  absl::StatusOr<ConnInfo> info = h.engine().GetInfo(id_, h.reactor().Now());
  VRPC_CHECK(info.ok()) << info.status();
  local_port_ = info->local_port;
  peer_port_ = info->peer_port;
  h.inprocess_by_ports_[PortKey(local_port_, peer_port_)] = this;
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
  VsockHost* h = host();
  if (h == nullptr) return HostGone();
  if (!id_.valid() || !h->by_conn_.contains(id_)) {
    return absl::FailedPreconditionError("connection closed by the application");
  }
  absl::StatusOr<SliceChain> data = h->engine().Read(id_, max, h->actions_);
  if (data.ok()) bytes_read_ += data->size();
  if (absl::StatusOr<ConnInfo> info = h->engine().GetInfo(id_, h->reactor().Now()); info.ok()) {
    engine_copied_ = info->rx_copied_bytes;
  }
  h->Flush();  // CREDIT_UPDATE; may run handlers, so |this| is not touched after
  return data;
}

bool InProcessConnection::AtEof() const {
  VsockHost* h = host();
  if (h == nullptr || !h->by_conn_.contains(id_)) return true;
  return h->engine().AtEof(id_);
}

absl::StatusOr<size_t> InProcessConnection::Write(SliceChain& data) {
  VsockHost* h = host();
  if (h == nullptr) return HostGone();
  if (!h->by_conn_.contains(id_)) {
    return absl::FailedPreconditionError("connection closed by the application");
  }
  if (write_shut_) return absl::FailedPreconditionError("write side shut down");
  absl::StatusOr<size_t> sent = h->engine().Send(id_, data, h->reactor().Now(), h->actions_);
  if (sent.ok()) bytes_written_ += *sent;
  h->Flush();
  return sent;
}

absl::Status InProcessConnection::ShutdownWrite() {
  VsockHost* h = host();
  if (h == nullptr) return HostGone();
  if (!h->by_conn_.contains(id_)) {
    return absl::FailedPreconditionError("connection closed by the application");
  }
  if (write_shut_) return absl::OkStatus();
  absl::Status s = h->engine().Shutdown(id_, kShutdownSend, h->reactor().Now(), h->actions_);
  if (s.ok()) write_shut_ = true;
  h->Flush();
  return s;
}

void InProcessConnection::Close() {
  handler_.reset();  // no events after Close
  VsockHost* h = host();
  if (h == nullptr || !h->by_conn_.contains(id_)) return;
  if (absl::StatusOr<ConnInfo> info = h->engine().GetInfo(id_, h->reactor().Now()); info.ok()) {
    engine_copied_ = info->rx_copied_bytes;
  }
  h->by_conn_.erase(id_);
  h->inprocess_by_ports_.erase(PortKey(local_port_, peer_port_));
  if (state_ != ConnectionState::kClosed) {
    state_ = ConnectionState::kClosed;
    status_ = absl::CancelledError("closed by the application");
  }
  h->engine().Close(id_, h->reactor().Now(), h->actions_);
  h->Flush();
}

transport::CreditInfo InProcessConnection::credit() const {
  transport::CreditInfo out;
  VsockHost* h = host();
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
  if (VsockHost* h = host(); h != nullptr && h->by_conn_.contains(id_)) {
    if (auto info = h->engine().GetInfo(id_, h->reactor().Now()); info.ok()) {
      engine_copied = info->rx_copied_bytes;
    }
  }
  out.rx_bytes_copied = engine_copied + device_copied_;
  out.tx_bytes_copied = 0;  // Write()'s Slices go straight into guest rx buffers
  return out;
}

std::string InProcessConnection::peer_address() const {
  return absl::StrCat("vsock:", peer_cid_, ":", peer_port_);
}

// ---------------------------------------------------------------------------
// InProcessListener

InProcessListener::InProcessListener(std::shared_ptr<VsockHost*> host, uint32_t port)
    : host_(std::move(host)), reactor_((*host_)->reactor()), port_(port) {
  (*host_)->listeners_[port_] = this;
}

InProcessListener::~InProcessListener() {
  VsockHost* h = *host_;
  if (h == nullptr) return;
  h->listeners_.erase(port_);
  h->engine().Unlisten(port_, h->actions_);  // refuses the backlog
  h->Flush();
}

void InProcessListener::SetAcceptHandler(AcceptHandler handler) {
  handler_ = std::make_shared<AcceptHandler>(std::move(handler));
  AcceptPending();
}

void InProcessListener::AcceptPending() {
  VsockHost* h = *host_;
  if (h == nullptr || handler_ == nullptr || !*handler_) return;
  std::shared_ptr<AcceptHandler> keep = handler_;
  std::shared_ptr<VsockHost*> host = host_;
  // The handler may destroy this listener: only locals below.
  while (*host != nullptr) {
    std::optional<ConnId> id = (*host)->engine().Accept(port_);
    if (!id.has_value()) break;
    (*keep)(std::make_unique<InProcessConnection>(host, *id, /*connecting=*/false));
    if (!*keep) break;
  }
}

std::string InProcessListener::address() const { return absl::StrCat("vsock:2:", port_); }

// ---------------------------------------------------------------------------
// InProcessConnector

InProcessConnector::InProcessConnector(std::shared_ptr<VsockHost*> host, uint32_t guest_port)
    : host_(std::move(host)),
      reactor_((*host_)->reactor()),
      guest_cid_((*host_)->guest_cid()),
      guest_port_(guest_port) {}

absl::StatusOr<std::unique_ptr<transport::Connection>> InProcessConnector::Connect() {
  VsockHost* h = *host_;
  if (h == nullptr) return HostGone();
  absl::StatusOr<ConnId> id =
      h->engine().Connect(guest_port_, SocketType::kStream, h->reactor().Now(), h->actions_);
  if (!id.ok()) return id.status();
  auto connection = std::make_unique<InProcessConnection>(host_, *id, /*connecting=*/true);
  // Flush from a fresh reactor turn: the caller sets its handler first, so
  // it sees kConnected (or kClosed) however fast the guest answers.
  h->reactor().Post([host = host_] {
    if (*host != nullptr) (*host)->Flush();
  });
  return std::unique_ptr<transport::Connection>(std::move(connection));
}

std::string InProcessConnector::address() const {
  return absl::StrCat("vsock:", guest_cid_, ":", guest_port_);
}

// ---------------------------------------------------------------------------
// VsockHost's in-process entry points

absl::StatusOr<std::unique_ptr<transport::Listener>> VsockHost::Listen(uint32_t port,
                                                                       size_t backlog) {
  if (absl::Status s = engine_->Listen(port, SocketType::kStream, backlog); !s.ok()) return s;
  return std::unique_ptr<transport::Listener>(new InProcessListener(self_, port));
}

std::unique_ptr<transport::Connector> VsockHost::ConnectorTo(uint32_t guest_port) {
  return std::make_unique<InProcessConnector>(self_, guest_port);
}

void VsockHost::ChargeCopy(const Header& header, uint32_t bytes) {
  auto it = inprocess_by_ports_.find(PortKey(header.dst_port, header.src_port));
  if (it != inprocess_by_ports_.end()) it->second->AddCopied(bytes);
}

}  // namespace vsock
}  // namespace vrpc
