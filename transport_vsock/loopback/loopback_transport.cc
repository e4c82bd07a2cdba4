#include "transport_vsock/loopback/loopback_transport.h"

#include <utility>

namespace vrpc {
namespace vsock {

absl::StatusOr<std::unique_ptr<LoopbackTransport>> LoopbackTransport::Create(
    io::Reactor& reactor, const LoopbackTransportOptions& options) {
  std::unique_ptr<LoopbackTransport> t(new LoopbackTransport(reactor));
  EngineConfig host = options.engine;
  host.local_cid = kCidHost;
  host.peer_cid = options.guest_cid;
  EngineConfig guest = options.engine;
  guest.local_cid = options.guest_cid;
  guest.peer_cid = kCidHost;
  guest.port_seed = options.engine.port_seed + 1;
  auto host_node = VsockNode::Create(host, reactor, t->to_guest_);
  if (!host_node.ok()) return host_node.status();
  auto guest_node = VsockNode::Create(guest, reactor, t->to_host_);
  if (!guest_node.ok()) return guest_node.status();
  t->host_ = *std::move(host_node);
  t->guest_ = *std::move(guest_node);
  return t;
}

LoopbackTransport::LoopbackTransport(io::Reactor& reactor) : reactor_(reactor) {}

LoopbackTransport::~LoopbackTransport() {
  *alive_ = false;
  to_guest_.Clear();
  to_host_.Clear();
  host_.reset();
  guest_.reset();
}

void LoopbackTransport::Reset(const absl::Status& why) {
  to_guest_.Clear();
  to_host_.Clear();
  host_->OnTransportReset(why);
  guest_->OnTransportReset(why);
}

void LoopbackTransport::Wire::SendToPeer(std::vector<Packet>& packets) {
  if (owner_.cut_) {
    packets.clear();
    return;
  }
  for (Packet& p : packets) queue_.push_back(std::move(p));
  packets.clear();
  if (posted_ || queue_.empty()) return;
  posted_ = true;
  owner_.reactor_.Post([this, alive = owner_.alive_] {
    if (*alive) Deliver();
  });
}

void LoopbackTransport::Wire::Deliver() {
  posted_ = false;
  // Packets sent while delivering wait for the next turn (fairness).
  std::vector<Packet> batch;
  batch.swap(spare_);
  batch.swap(queue_);
  VsockNode& to = to_guest_ ? *owner_.guest_ : *owner_.host_;
  for (Packet& p : batch) {
    if (owner_.cut_) break;
    ++owner_.delivered_;
    to.OnPacket(p.header, std::move(p.payload));
  }
  batch.clear();
  if (spare_.capacity() < batch.capacity()) spare_.swap(batch);
}

}  // namespace vsock
}  // namespace vrpc
