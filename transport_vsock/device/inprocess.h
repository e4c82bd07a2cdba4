// File: transport_vsock/device/inprocess.h
//
// The host side's in-process endpoints: core/transport's Connection,
// Listener and Connector over a VsockHost's engine, for host programs that
// link vrpc (the host agent's RPC server and clients) instead of going
// through hybrid Unix sockets.
//
// Zero copy: Read() hands out the engine's Slices, which on the device point
// into the guest's tx buffers; the descriptor chain returns to the guest's
// ring when the application drops them. stats().rx_bytes_copied counts the
// exceptions: payloads under the engine's copy_below, and payloads the device
// copied because the guest's tx ring was half held by the host.
//
// Lifetime: objects hold a weak handle on their VsockHost. If the host dies
// first, they report kClosed/UNAVAILABLE state (no event) and fail calls with
// kUnavailable. All calls on the host's reactor thread.
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_INPROCESS_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_INPROCESS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/device/vsock_host.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

// One engine connection of a VsockHost as a transport::Connection.
class InProcessConnection final : public transport::Connection, private VsockHost::Endpoint {
 public:
  // Takes ownership of engine connection |id| (Close()s it when done).
  InProcessConnection(std::shared_ptr<VsockHost*> host, ConnId id, bool connecting);
  ~InProcessConnection() override;

  io::Reactor& reactor() override { return reactor_; }
  void SetEventHandler(EventHandler handler) override;
  transport::ConnectionState state() const override { return state_; }
  absl::Status status() const override { return status_; }
  absl::StatusOr<SliceChain> Read(size_t max) override;
  bool AtEof() const override;
  absl::StatusOr<size_t> Write(SliceChain& data) override;
  absl::Status ShutdownWrite() override;
  void Close() override;
  transport::CreditInfo credit() const override;
  transport::ConnectionStats stats() const override;
  std::string peer_address() const override;

  // Device copies charged by VsockHost::ChargeCopy.
  void AddCopied(uint32_t bytes) { device_copied_ += bytes; }

 private:
  friend class VsockHost;
  void OnEvent(const Event& event) override;
  // Ends the engine side (Close + unregister) and records |why|.
  void Finish(absl::Status why);
  void Emit(transport::ConnectionEventType type, absl::Status status = absl::OkStatus());
  VsockHost* host() const { return *host_; }

  std::shared_ptr<VsockHost*> host_;
  io::Reactor& reactor_;
  const ConnId id_;
  const uint64_t peer_cid_;
  uint32_t local_port_ = 0;
  uint32_t peer_port_ = 0;
  transport::ConnectionState state_;
  absl::Status status_;
  bool write_shut_ = false;
  bool eof_ = false;  // latched: peer shut down sending and all was read
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t device_copied_ = 0;
  uint64_t engine_copied_ = 0;  // last known, kept after the engine forgets
  // Shared so that a handler that destroys the connection does not destroy
  // itself while running.
  std::shared_ptr<EventHandler> handler_;
};

// Guest connections to one host port.
class InProcessListener final : public transport::Listener {
 public:
  InProcessListener(std::shared_ptr<VsockHost*> host, uint32_t port);
  ~InProcessListener() override;

  io::Reactor& reactor() override { return reactor_; }
  void SetAcceptHandler(AcceptHandler handler) override;
  std::string address() const override;

 private:
  friend class VsockHost;
  // Hands every waiting connection to the handler (if one is set).
  void AcceptPending();

  std::shared_ptr<VsockHost*> host_;
  io::Reactor& reactor_;
  const uint32_t port_;
  std::shared_ptr<AcceptHandler> handler_;
};

// Host connections to one guest port.
class InProcessConnector final : public transport::Connector {
 public:
  InProcessConnector(std::shared_ptr<VsockHost*> host, uint32_t guest_port);

  io::Reactor& reactor() override { return reactor_; }
  absl::StatusOr<std::unique_ptr<transport::Connection>> Connect() override;
  std::string address() const override;

 private:
  std::shared_ptr<VsockHost*> host_;
  io::Reactor& reactor_;
  const uint64_t guest_cid_;
  const uint32_t guest_port_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_INPROCESS_H_
