// File: transport_vsock/node/vsock_node.h
//
// VsockNode: one side of a vsock link (the host side of a VM's device, the
// guest side of the userspace driver, either end of the loopback) running
// its protocol engine on a reactor. It is the I/O edge of the sans-I/O
// engine: it feeds packets and timer ticks in, hands the engine's packets to
// a PacketSink (rings, another engine), and delivers the engine's events to
// whoever owns each connection:
//
//   - in-process endpoints (inprocess.h): core/transport Connection,
//     Listener and Connector, which the RPC layer uses;
//   - other endpoint kinds built on the engine (the device's hybrid Unix
//     socket bridges) through Register() and the raw engine().
//
// Every engine call goes through actions(); Flush() then sends the packets
// and dispatches the events, re-entrantly safe (a handler may call back in;
// the outer Flush picks up what it added), and re-arms the engine's timer.
//
// Thread-safety: everything on the reactor's thread.
#ifndef VRPC_TRANSPORT_VSOCK_NODE_VSOCK_NODE_H_
#define VRPC_TRANSPORT_VSOCK_NODE_VSOCK_NODE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/protocol/engine.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

// Where a node's packets go.
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // Takes every packet out of |packets| (leaving it empty). Called on the
  // reactor thread; must not call back into the node.
  virtual void SendToPeer(std::vector<Packet>& packets) = 0;
};

class InProcessConnection;
class InProcessListener;

// What the transport under a node adds to its in-process endpoints (the
// guest driver: its tx pool, and no connects while its device is down).
// Defaults: heap buffers, connects always allowed.
class EndpointHooks {
 public:
  virtual ~EndpointHooks() = default;
  // OK, or why Connect() must fail now (kUnavailable).
  virtual absl::Status CanConnect() { return absl::OkStatus(); }
  // Connection::AllocateWriteBuffer and write_buffer_allocator.
  virtual Slice AllocateWriteBuffer(size_t size, uint8_t** data) {
    return Slice::Allocate(size, data);
  }
  virtual transport::WriteBufferAllocator write_buffer_allocator() { return nullptr; }
};

class VsockNode {
 public:
  // Something that owns engine connections and wants their events.
  class Endpoint {
   public:
    virtual ~Endpoint() = default;
    virtual void OnEvent(const Event& event) = 0;
  };

  // |config| must name both CIDs. Does not take ownership of |reactor| or
  // |sink|; both must outlive the node. Errors as Engine::Create.
  static absl::StatusOr<std::unique_ptr<VsockNode>> Create(const EngineConfig& config,
                                                           io::Reactor& reactor,
                                                           PacketSink& sink);
  // Stops the timer. In-process endpoints still alive see the node gone.
  ~VsockNode();
  VsockNode(const VsockNode&) = delete;
  VsockNode& operator=(const VsockNode&) = delete;

  // ---- The transport side ----

  // A packet from the peer. |payload| may point into shared memory; it is
  // released when the engine no longer needs it. |copied_bytes|: how much
  // of it the transport had to copy (charged to the connection's
  // rx_bytes_copied).
  void OnPacket(const Header& header, SliceChain payload, uint32_t copied_bytes = 0);
  // The transport under the engine went away: every connection ends
  // (kClosed UNAVAILABLE for in-process ones). Listeners stay.
  void OnTransportReset(const absl::Status& why);
  // Charges |bytes| the transport copied of a packet (rx: one it received,
  // else one it sent) to the in-process connection it belongs to.
  void ChargeCopy(const Header& header, uint32_t bytes, bool rx);
  // Not owned; must outlive the node (or be reset to null first).
  void SetEndpointHooks(EndpointHooks* hooks) { hooks_ = hooks; }
  EndpointHooks* hooks() const { return hooks_; }

  // ---- In-process endpoints (inprocess.h) ----

  // Takes connections to local |port| (kStream). kAlreadyExists if taken.
  // The listener may outlive the node (then it accepts nothing).
  absl::StatusOr<std::unique_ptr<transport::Listener>> Listen(uint32_t port,
                                                              size_t backlog = 128);
  // Opens connections to the peer's |port|. Same lifetime rule.
  std::unique_ptr<transport::Connector> ConnectorTo(uint32_t peer_port);

  // ---- For endpoint kinds built on the raw engine ----

  Engine& engine() { return *engine_; }
  // The sink for engine calls; call Flush() after them.
  Actions& actions() { return actions_; }
  void Flush();
  // Routes |id|'s events to |endpoint| until Unregister.
  void Register(ConnId id, Endpoint* endpoint) { by_conn_[id] = endpoint; }
  void Unregister(ConnId id) { by_conn_.erase(id); }
  bool IsRegistered(ConnId id) const { return by_conn_.contains(id); }
  // Called for kIncoming on a port with no in-process listener (the
  // any-port listener's requests).
  void SetIncomingFallback(std::function<void(const Event&)> fn) { incoming_ = std::move(fn); }
  // Called at the end of every outermost Flush.
  void SetAfterFlush(std::function<void()> fn) { after_flush_ = std::move(fn); }

  io::Reactor& reactor() { return reactor_; }
  absl::Time Now() { return reactor_.Now(); }
  uint64_t local_cid() const { return engine_->config().local_cid; }
  uint64_t peer_cid() const { return engine_->config().peer_cid; }

 private:
  friend class InProcessConnection;
  friend class InProcessListener;

  VsockNode(io::Reactor& reactor, PacketSink& sink, std::unique_ptr<Engine> engine);
  void Dispatch(const Event& event);
  void ScheduleTimer();

  io::Reactor& reactor_;
  PacketSink& sink_;
  std::unique_ptr<Engine> engine_;
  Actions actions_;
  std::vector<Packet> spare_packets_;  // Flush: capacity kept between turns
  std::vector<Event> spare_events_;
  bool flushing_ = false;
  io::TimerId timer_ = 0;
  absl::Time timer_deadline_ = absl::InfiniteFuture();
  absl::flat_hash_map<ConnId, Endpoint*> by_conn_;
  absl::flat_hash_map<uint32_t, InProcessListener*> listeners_;
  // In-process connections by (local port, peer port), to charge copies.
  absl::flat_hash_map<uint64_t, InProcessConnection*> by_ports_;
  std::function<void(const Event&)> incoming_;
  std::function<void()> after_flush_;
  EndpointHooks* hooks_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // What in-process endpoints hold: points at this node until it dies.
  std::shared_ptr<VsockNode*> self_ = std::make_shared<VsockNode*>(this);
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_NODE_VSOCK_NODE_H_
