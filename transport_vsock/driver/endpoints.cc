#include "transport_vsock/driver/endpoints.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/driver/internal/session.h"

namespace vrpc {
namespace vsock {
namespace {

using transport::ConnectionEventType;
using transport::ConnectionState;

uint64_t PortKey(uint32_t local_port, uint32_t peer_port) {
  return (uint64_t{local_port} << 32) | peer_port;
}

absl::Status DriverGone() { return absl::UnavailableError("the vsock driver is gone"); }

absl::Status ClosedByApplication() {
  return absl::FailedPreconditionError("connection closed by the application");
}

// A terminal engine status as the Connection contract states it: OK for an
// orderly close, DEADLINE_EXCEEDED for a connect timeout, UNAVAILABLE for
// every other end (as node/inprocess.cc).
absl::Status TerminalStatus(const Event& e) {
  if (e.type == EventType::kClosed) return e.status;
  if (absl::IsUnavailable(e.status) || absl::IsDeadlineExceeded(e.status)) return e.status;
  if (!e.status.ok()) return absl::UnavailableError(e.status.message());
  return absl::UnavailableError(e.type == EventType::kRefused ? "connection refused"
                                                              : "connection reset");
}

}  // namespace

// ---------------------------------------------------------------------------
// DriverConnection

DriverConnection::DriverConnection(std::shared_ptr<VsockDriver*> driver, ConnId id,
                                   bool connecting)
    : driver_(std::move(driver)),
      reactor_((*driver_)->reactor()),
      id_(id),
      state_(connecting ? ConnectionState::kConnecting : ConnectionState::kOpen) {
  VsockDriver& d = **driver_;
  d.node().Register(id_, this);
  absl::StatusOr<ConnInfo> info = d.node().engine().GetInfo(id_, d.reactor().Now());
  VRPC_CHECK(info.ok()) << info.status();
  local_port_ = info->local_port;
  peer_port_ = info->peer_port;
  d.by_ports_[PortKey(local_port_, peer_port_)] = this;
}

DriverConnection::~DriverConnection() {
  handler_.reset();
  Close();
}

VsockDriver* DriverConnection::driver() const {
  VsockDriver* d = *driver_;
  if (d == nullptr || !registered_) return nullptr;
  return d;
}

void DriverConnection::SetEventHandler(EventHandler handler) {
  handler_ = std::make_shared<EventHandler>(std::move(handler));
}

void DriverConnection::Emit(ConnectionEventType type, absl::Status status) {
  if (handler_ == nullptr || !*handler_) return;
  std::shared_ptr<EventHandler> keep = handler_;
  (*keep)(transport::ConnectionEvent{type, std::move(status)});
  // |this| may be gone now.
}

void DriverConnection::OnEvent(const Event& e) {
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
      // The engine record stays until Close(): buffered bytes stay readable.
      state_ = ConnectionState::kClosed;
      status_ = TerminalStatus(e);
      return Emit(ConnectionEventType::kClosed, status_);
    default:
      return;
  }
}

absl::StatusOr<SliceChain> DriverConnection::Read(size_t max) {
  if (*driver_ == nullptr) return DriverGone();
  VsockDriver* d = driver();
  if (d == nullptr) return ClosedByApplication();
  Engine& engine = d->node().engine();
  absl::StatusOr<SliceChain> data = engine.Read(id_, max, d->node().actions());
  if (data.ok()) bytes_read_ += data->size();
  if (absl::StatusOr<ConnInfo> info = engine.GetInfo(id_, d->reactor().Now()); info.ok()) {
    engine_copied_ = info->rx_copied_bytes;
  }
  d->node().Flush();  // CREDIT_UPDATE; may run handlers, so |this| is not touched after
  return data;
}

bool DriverConnection::AtEof() const {
  VsockDriver* d = driver();
  return d == nullptr || d->node().engine().AtEof(id_);
}

absl::StatusOr<size_t> DriverConnection::Write(SliceChain& data) {
  if (*driver_ == nullptr) return DriverGone();
  VsockDriver* d = driver();
  if (d == nullptr) return ClosedByApplication();
  if (write_shut_) return absl::FailedPreconditionError("write side shut down");
  absl::StatusOr<size_t> sent =
      d->node().engine().Send(id_, data, d->reactor().Now(), d->node().actions());
  if (sent.ok()) bytes_written_ += *sent;
  d->node().Flush();
  return sent;
}

Slice DriverConnection::AllocateWriteBuffer(size_t size, uint8_t** data) {
  VsockDriver* d = *driver_;
  if (d == nullptr) return Slice::Allocate(size, data);
  return d->AllocateWriteBuffer(size, data);
}

transport::WriteBufferAllocator DriverConnection::write_buffer_allocator() {
  VsockDriver* d = *driver_;
  return d == nullptr ? nullptr : d->write_buffer_allocator();
}

absl::Status DriverConnection::ShutdownWrite() {
  if (*driver_ == nullptr) return DriverGone();
  VsockDriver* d = driver();
  if (d == nullptr) return ClosedByApplication();
  if (write_shut_) return absl::OkStatus();
  absl::Status s =
      d->node().engine().Shutdown(id_, kShutdownSend, d->reactor().Now(), d->node().actions());
  if (s.ok()) write_shut_ = true;
  d->node().Flush();
  return s;
}

void DriverConnection::Close() {
  handler_.reset();  // no events after Close
  VsockDriver* d = driver();
  if (d == nullptr) {
    if (state_ != ConnectionState::kClosed && *driver_ == nullptr) {
      state_ = ConnectionState::kClosed;
      status_ = DriverGone();
    }
    return;
  }
  Engine& engine = d->node().engine();
  if (absl::StatusOr<ConnInfo> info = engine.GetInfo(id_, d->reactor().Now()); info.ok()) {
    engine_copied_ = info->rx_copied_bytes;
  }
  registered_ = false;
  d->node().Unregister(id_);
  d->by_ports_.erase(PortKey(local_port_, peer_port_));
  if (state_ != ConnectionState::kClosed) {
    state_ = ConnectionState::kClosed;
    status_ = absl::CancelledError("closed by the application");
  }
  engine.Close(id_, d->reactor().Now(), d->node().actions());
  d->node().Flush();
}

transport::CreditInfo DriverConnection::credit() const {
  transport::CreditInfo out;
  VsockDriver* d = driver();
  if (d == nullptr) return out;
  absl::StatusOr<ConnInfo> info = d->node().engine().GetInfo(id_, d->reactor().Now());
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

transport::ConnectionStats DriverConnection::stats() const {
  transport::ConnectionStats out;
  out.bytes_read = bytes_read_;
  out.bytes_written = bytes_written_;
  uint64_t engine_copied = engine_copied_;
  if (VsockDriver* d = driver(); d != nullptr) {
    if (auto info = d->node().engine().GetInfo(id_, d->reactor().Now()); info.ok()) {
      engine_copied = info->rx_copied_bytes;
    }
  }
  out.rx_bytes_copied = engine_copied + rx_copied_;
  out.tx_bytes_copied = tx_copied_;
  return out;
}

std::string DriverConnection::peer_address() const {
  return absl::StrCat("vsock:", kCidHost, ":", peer_port_);
}

// ---------------------------------------------------------------------------
// DriverListener

DriverListener::DriverListener(std::shared_ptr<VsockDriver*> driver, uint32_t port)
    : driver_(std::move(driver)), reactor_((*driver_)->reactor()), port_(port) {
  (*driver_)->listeners_[port_] = this;
}

DriverListener::~DriverListener() {
  VsockDriver* d = *driver_;
  if (d == nullptr) return;
  d->listeners_.erase(port_);
  d->node().engine().Unlisten(port_, d->node().actions());  // refuses the backlog
  d->node().Flush();
}

void DriverListener::SetAcceptHandler(AcceptHandler handler) {
  handler_ = std::make_shared<AcceptHandler>(std::move(handler));
  AcceptPending();
}

void DriverListener::AcceptPending() {
  if (*driver_ == nullptr || handler_ == nullptr || !*handler_) return;
  std::shared_ptr<AcceptHandler> keep = handler_;
  std::shared_ptr<VsockDriver*> driver = driver_;
  const uint32_t port = port_;
  // The handler may destroy this listener: only locals below.
  while (*driver != nullptr) {
    std::optional<ConnId> id = (*driver)->node().engine().Accept(port);
    if (!id.has_value()) break;
    (*keep)(std::make_unique<DriverConnection>(driver, *id, /*connecting=*/false));
    if (!*keep) break;
  }
}

std::string DriverListener::address() const {
  VsockDriver* d = *driver_;
  return absl::StrCat("vsock:", d != nullptr ? d->guest_cid() : 0, ":", port_);
}

// ---------------------------------------------------------------------------
// DriverConnector

DriverConnector::DriverConnector(std::shared_ptr<VsockDriver*> driver, uint32_t port)
    : driver_(std::move(driver)), reactor_((*driver_)->reactor()), port_(port) {}

absl::StatusOr<std::unique_ptr<transport::Connection>> DriverConnector::Connect() {
  VsockDriver* d = *driver_;
  if (d == nullptr) return DriverGone();
  if (!d->up()) return absl::UnavailableError("the vsock device is being reset");
  absl::StatusOr<ConnId> id = d->node().engine().Connect(
      port_, SocketType::kStream, d->reactor().Now(), d->node().actions());
  if (!id.ok()) return id.status();
  auto connection = std::make_unique<DriverConnection>(driver_, *id, /*connecting=*/true);
  // Flush from a fresh reactor turn: the caller sets its handler first, so
  // it sees kConnected (or kClosed) however fast the host answers.
  d->reactor().Post([driver = driver_] {
    if (*driver != nullptr) (*driver)->node().Flush();
  });
  return std::unique_ptr<transport::Connection>(std::move(connection));
}

std::string DriverConnector::address() const { return absl::StrCat("vsock:2:", port_); }

// ---------------------------------------------------------------------------
// VsockDriver's endpoint entry points

absl::StatusOr<std::unique_ptr<transport::Listener>> VsockDriver::Listen(uint32_t port,
                                                                         size_t backlog) {
  if (absl::Status s = node_->engine().Listen(port, SocketType::kStream, backlog); !s.ok()) {
    return s;
  }
  return std::unique_ptr<transport::Listener>(new DriverListener(self_, port));
}

absl::StatusOr<std::unique_ptr<transport::Connector>> VsockDriver::ConnectorTo(uint64_t cid,
                                                                               uint32_t port) {
  if (cid != kCidHost) {
    return absl::InvalidArgumentError(
        absl::StrCat("a virtio-vsock guest reaches only the host (CID 2), not CID ", cid));
  }
  return std::unique_ptr<transport::Connector>(new DriverConnector(self_, port));
}

void VsockDriver::ChargeCopy(const Header& header, uint32_t bytes, bool rx) {
  const uint64_t key = rx ? PortKey(header.dst_port, header.src_port)
                          : PortKey(header.src_port, header.dst_port);
  auto it = by_ports_.find(key);
  if (it == by_ports_.end()) return;
  (rx ? it->second->rx_copied_ : it->second->tx_copied_) += bytes;
}

void VsockDriver::SetPoolSlot(std::shared_ptr<internal::TxPool> pool) {
  std::lock_guard<std::mutex> lock(pool_slot_->mu);
  pool_slot_->pool = std::move(pool);
}

transport::WriteBufferAllocator VsockDriver::write_buffer_allocator() const {
  return [slot = pool_slot_](size_t size, uint8_t** data) {
    std::shared_ptr<internal::TxPool> pool;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      pool = slot->pool;
    }
    if (pool != nullptr && size > 0) {
      Slice block = pool->Allocate(size, data);
      if (!block.empty()) return block;
    }
    return Slice::Allocate(size, data);  // copied when written (counted)
  };
}

Slice VsockDriver::AllocateWriteBuffer(size_t size, uint8_t** data) {
  if (session_ != nullptr && size > 0) {
    Slice block = session_->tx_pool().Allocate(size, data);
    if (!block.empty()) return block;
  }
  return Slice::Allocate(size, data);  // copied when written (counted)
}

}  // namespace vsock
}  // namespace vrpc
