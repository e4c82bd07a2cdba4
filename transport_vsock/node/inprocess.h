// File: transport_vsock/node/inprocess.h
//
// In-process endpoints: core/transport's Connection, Listener and Connector
// over a VsockNode's engine, for programs that link vrpc (the RPC layer on
// the host device, the guest driver, the loopback) instead of going through
// sockets.
//
// Zero copy: Read() hands out the engine's Slices, which on the device point
// into the guest's tx buffers (on the driver, into its rx buffers); the
// buffer goes back to its ring when the application drops them.
// stats().rx_bytes_copied counts the exceptions: payloads under the engine's
// copy_below, and payloads the transport copied (VsockNode::OnPacket's
// copied_bytes, e.g. the device under tx-ring pressure).
//
// Lifetime: objects hold a handle on their VsockNode that goes null when the
// node dies; then calls fail with kUnavailable (no event is delivered). All
// calls on the node's reactor thread.
//
// The transport under the node shapes them through its EndpointHooks:
// where write buffers come from, and whether Connect() may open now.
#ifndef VRPC_TRANSPORT_VSOCK_NODE_INPROCESS_H_
#define VRPC_TRANSPORT_VSOCK_NODE_INPROCESS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/node/vsock_node.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

// One engine connection of a VsockNode as a transport::Connection.
class InProcessConnection final : public transport::Connection, private VsockNode::Endpoint {
 public:
  // Takes ownership of engine connection |id| (Close()s it when done).
  InProcessConnection(std::shared_ptr<VsockNode*> node, ConnId id, bool connecting);
  ~InProcessConnection() override;

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

  // Transport copies charged by VsockNode::ChargeCopy.
  void AddCopied(uint32_t bytes) { transport_copied_ += bytes; }
  void AddTxCopied(uint32_t bytes) { tx_copied_ += bytes; }
  static uint64_t PortKey(uint32_t local_port, uint32_t peer_port) {
    return (uint64_t{local_port} << 32) | peer_port;
  }

 private:
  friend class VsockNode;

  // Copies the engine's per-connection counters into this object before the
  // engine forgets the connection (Close) or goes away (~VsockNode).
  void SaveEngineStats();
  void OnEvent(const Event& event) override;
  // Ends the engine side (Close + unregister) and records |why|.
  void Finish(absl::Status why);
  void Emit(transport::ConnectionEventType type, absl::Status status = absl::OkStatus());
  VsockNode* node() const { return *node_; }

  std::shared_ptr<VsockNode*> node_;
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
  uint64_t transport_copied_ = 0;
  uint64_t tx_copied_ = 0;
  uint64_t engine_copied_ = 0;  // last known, kept after the engine forgets
  // Shared so that a handler that destroys the connection does not destroy
  // itself while running.
  std::shared_ptr<EventHandler> handler_;
};

// Peer connections to one local port.
class InProcessListener final : public transport::Listener {
 public:
  InProcessListener(std::shared_ptr<VsockNode*> node, uint32_t port);
  ~InProcessListener() override;

  io::Reactor& reactor() override { return reactor_; }
  void SetAcceptHandler(AcceptHandler handler) override;
  std::string address() const override;

 private:
  friend class VsockNode;
  // Hands every waiting connection to the handler (if one is set).
  void AcceptPending();

  std::shared_ptr<VsockNode*> node_;
  io::Reactor& reactor_;
  const uint32_t port_;
  std::shared_ptr<AcceptHandler> handler_;
};

// Connections to one peer port.
class InProcessConnector final : public transport::Connector {
 public:
  InProcessConnector(std::shared_ptr<VsockNode*> node, uint32_t peer_port);

  io::Reactor& reactor() override { return reactor_; }
  absl::StatusOr<std::unique_ptr<transport::Connection>> Connect() override;
  std::string address() const override;

 private:
  std::shared_ptr<VsockNode*> node_;
  io::Reactor& reactor_;
  const uint64_t peer_cid_;
  const uint32_t peer_port_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_NODE_INPROCESS_H_
