// File: transport_vsock/driver/endpoints.h
//
// The guest driver's core/transport endpoints: Connection, Listener and
// Connector over a VsockDriver's engine, registered with its VsockNode. They
// are node/inprocess.h's endpoints plus what only the driver can offer:
// write buffers in the device-readable tx pool, tx copy accounting, and a
// Connect() that fails at once while the device is being reset.
//
// Zero copy both ways. Read() hands out Slices that point into the driver's
// rx buffers in DMA memory; the buffer is posted to the device again when the
// application drops them (rx_bytes_copied counts the exceptions: payloads
// under the engine's copy_below, and payloads copied while the application
// held half the rx buffers). AllocateWriteBuffer() returns Slices in the tx
// pool, which the device reads in place; other Slices given to Write() are
// copied into the pool (tx_bytes_copied).
//
// Lifetime: objects hold a weak handle on their VsockDriver. If the driver
// dies first they report kClosed / UNAVAILABLE (no event) and fail calls
// with kUnavailable. All calls on the driver's reactor thread.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_ENDPOINTS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_ENDPOINTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/driver/vsock_driver.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

// One engine connection of a VsockDriver as a transport::Connection.
class DriverConnection final : public transport::Connection, private VsockNode::Endpoint {
 public:
  // Takes ownership of engine connection |id| (Close()s it when done).
  DriverConnection(std::shared_ptr<VsockDriver*> driver, ConnId id, bool connecting);
  ~DriverConnection() override;

  io::Reactor& reactor() override { return reactor_; }
  void SetEventHandler(EventHandler handler) override;
  transport::ConnectionState state() const override { return state_; }
  absl::Status status() const override { return status_; }
  absl::StatusOr<SliceChain> Read(size_t max) override;
  bool AtEof() const override;
  absl::StatusOr<size_t> Write(SliceChain& data) override;
  Slice AllocateWriteBuffer(size_t size, uint8_t** data) override;
  transport::WriteBufferAllocator write_buffer_allocator() override;
  absl::Status ShutdownWrite() override;
  void Close() override;
  transport::CreditInfo credit() const override;
  transport::ConnectionStats stats() const override;
  std::string peer_address() const override;

 private:
  friend class VsockDriver;
  void OnEvent(const Event& event) override;
  void Emit(transport::ConnectionEventType type, absl::Status status = absl::OkStatus());
  // The driver, if it is alive and still knows this connection.
  VsockDriver* driver() const;

  std::shared_ptr<VsockDriver*> driver_;
  io::Reactor& reactor_;
  const ConnId id_;
  uint32_t local_port_ = 0;
  uint32_t peer_port_ = 0;
  transport::ConnectionState state_;
  absl::Status status_;
  bool write_shut_ = false;
  bool registered_ = true;  // with the node, until Close()
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t rx_copied_ = 0;      // by the driver (rx buffer pressure)
  uint64_t tx_copied_ = 0;      // by the driver (Slices outside the pool)
  uint64_t engine_copied_ = 0;  // last known, kept after the engine forgets
  // Shared so that a handler that destroys the connection does not destroy
  // itself while running.
  std::shared_ptr<EventHandler> handler_;
};

// Host connections to one guest port.
class DriverListener final : public transport::Listener {
 public:
  DriverListener(std::shared_ptr<VsockDriver*> driver, uint32_t port);
  ~DriverListener() override;

  io::Reactor& reactor() override { return reactor_; }
  void SetAcceptHandler(AcceptHandler handler) override;
  std::string address() const override;

 private:
  friend class VsockDriver;
  // Hands every waiting connection to the handler (if one is set).
  void AcceptPending();

  std::shared_ptr<VsockDriver*> driver_;
  io::Reactor& reactor_;
  const uint32_t port_;
  std::shared_ptr<AcceptHandler> handler_;
};

// Guest connections to one host port.
class DriverConnector final : public transport::Connector {
 public:
  DriverConnector(std::shared_ptr<VsockDriver*> driver, uint32_t port);

  io::Reactor& reactor() override { return reactor_; }
  absl::StatusOr<std::unique_ptr<transport::Connection>> Connect() override;
  std::string address() const override;

 private:
  std::shared_ptr<VsockDriver*> driver_;
  io::Reactor& reactor_;
  const uint32_t port_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_ENDPOINTS_H_
