// File: transport_vsock/loopback/loopback_transport.h
//
// LoopbackTransport: two VsockNodes on one reactor, a "host" (CID 2) and a
// "guest" (CID 3), whose packets reach each other through reactor tasks. It
// offers the core/transport endpoints of both sides, so the RPC layer runs
// over the full vsock protocol (handshake, credit, half-close, resets) with
// no rings and no VM. Unlike LoopbackLink (loopback.h), it is driven by a
// real reactor: with a UringReactor on its own thread it behaves like a
// real transport; with a ManualReactor it is deterministic.
//
// A packet is delivered on a later reactor turn than the one that sent it,
// as on a real link. Payloads pass by reference (Slices), never copied.
//
// Thread-safety: everything on the reactor's thread, including destruction.
#ifndef VRPC_TRANSPORT_VSOCK_LOOPBACK_LOOPBACK_TRANSPORT_H_
#define VRPC_TRANSPORT_VSOCK_LOOPBACK_LOOPBACK_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/reactor.h"
#include "transport_vsock/node/vsock_node.h"
#include "transport_vsock/protocol/engine.h"

namespace vrpc {
namespace vsock {

struct LoopbackTransportOptions {
  uint64_t guest_cid = 3;
  // Engine tuning for both sides (CIDs are filled in).
  EngineConfig engine;
};

class LoopbackTransport {
 public:
  // Does not take ownership of |reactor|, which must outlive the transport.
  static absl::StatusOr<std::unique_ptr<LoopbackTransport>> Create(
      io::Reactor& reactor, const LoopbackTransportOptions& options = {});
  ~LoopbackTransport();
  LoopbackTransport(const LoopbackTransport&) = delete;
  LoopbackTransport& operator=(const LoopbackTransport&) = delete;

  VsockNode& host() { return *host_; }
  VsockNode& guest() { return *guest_; }

  // The link drops (a device reset): packets in flight are lost and both
  // sides see every connection reset; listeners stay.
  void Reset(const absl::Status& why);
  // While cut, packets in either direction are dropped silently (a peer
  // that stopped answering).
  void set_cut(bool cut) { cut_ = cut; }

  uint64_t packets_delivered() const { return delivered_; }

 private:
  // Queues packets for |to| and delivers them on a later reactor turn.
  class Wire final : public PacketSink {
   public:
    Wire(LoopbackTransport& owner, bool to_guest) : owner_(owner), to_guest_(to_guest) {}
    void SendToPeer(std::vector<Packet>& packets) override;
    void Deliver();
    void Clear() { queue_.clear(); }

   private:
    LoopbackTransport& owner_;
    const bool to_guest_;
    std::vector<Packet> queue_;
    std::vector<Packet> spare_;  // Deliver: capacity kept between turns
    bool posted_ = false;
  };

  explicit LoopbackTransport(io::Reactor& reactor);

  io::Reactor& reactor_;
  Wire to_guest_{*this, true};
  Wire to_host_{*this, false};
  std::unique_ptr<VsockNode> host_;
  std::unique_ptr<VsockNode> guest_;
  bool cut_ = false;
  uint64_t delivered_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_LOOPBACK_LOOPBACK_TRANSPORT_H_
