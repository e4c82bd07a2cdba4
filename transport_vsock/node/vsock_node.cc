#include "transport_vsock/node/vsock_node.h"

#include <utility>

#include "transport_vsock/node/inprocess.h"

namespace vrpc {
namespace vsock {

absl::StatusOr<std::unique_ptr<VsockNode>> VsockNode::Create(const EngineConfig& config,
                                                             io::Reactor& reactor,
                                                             PacketSink& sink) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(config);
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<VsockNode>(new VsockNode(reactor, sink, *std::move(engine)));
}

VsockNode::VsockNode(io::Reactor& reactor, PacketSink& sink, std::unique_ptr<Engine> engine)
    : reactor_(reactor), sink_(sink), engine_(std::move(engine)) {}

VsockNode::~VsockNode() {
  for (auto& [key, conn] : by_ports_) conn->SaveEngineStats();  // outlive the engine
  *alive_ = false;
  *self_ = nullptr;
  if (timer_ != 0) reactor_.CancelTimer(timer_);
}

void VsockNode::ChargeCopy(const Header& header, uint32_t bytes, bool rx) {
  if (bytes == 0) return;
  auto it = by_ports_.find(rx ? InProcessConnection::PortKey(header.dst_port, header.src_port)
                              : InProcessConnection::PortKey(header.src_port, header.dst_port));
  if (it == by_ports_.end()) return;
  if (rx) {
    it->second->AddCopied(bytes);
  } else {
    it->second->AddTxCopied(bytes);
  }
}

void VsockNode::OnPacket(const Header& header, SliceChain payload, uint32_t copied_bytes) {
  ChargeCopy(header, copied_bytes, /*rx=*/true);
  engine_->OnPacket(header, std::move(payload), reactor_.Now(), actions_);
  Flush();
}

void VsockNode::OnTransportReset(const absl::Status& why) {
  engine_->ResetAll(why, actions_);
  Flush();
}

absl::StatusOr<std::unique_ptr<transport::Listener>> VsockNode::Listen(uint32_t port,
                                                                       size_t backlog) {
  if (absl::Status s = engine_->Listen(port, SocketType::kStream, backlog); !s.ok()) return s;
  return std::unique_ptr<transport::Listener>(new InProcessListener(self_, port));
}

std::unique_ptr<transport::Connector> VsockNode::ConnectorTo(uint32_t peer_port) {
  return std::make_unique<InProcessConnector>(self_, peer_port);
}

void VsockNode::Dispatch(const Event& event) {
  if (event.type == EventType::kIncoming) {
    // A port's own listener first; then requests parked on an any-port
    // listener (the two queues are distinct in the engine).
    auto listener = listeners_.find(event.port);
    if (listener != listeners_.end()) listener->second->AcceptPending();
    if (incoming_) incoming_(event);
    return;
  }
  auto it = by_conn_.find(event.conn);
  if (it != by_conn_.end()) it->second->OnEvent(event);
}

void VsockNode::Flush() {
  if (flushing_) return;  // the outer Flush picks up what this call added
  if (actions_.empty()) {  // the common case after a read: nothing to move
    ScheduleTimer();
    if (after_flush_) after_flush_();
    return;
  }
  flushing_ = true;
  while (!actions_.empty()) {
    // Swap rather than move, so the vectors keep their capacity.
    std::vector<Packet> packets;
    std::vector<Event> events;
    packets.swap(spare_packets_);
    events.swap(spare_events_);
    packets.swap(actions_.packets);
    events.swap(actions_.events);
    if (!packets.empty()) sink_.SendToPeer(packets);
    for (const Event& e : events) Dispatch(e);
    packets.clear();
    events.clear();
    if (spare_packets_.capacity() < packets.capacity()) spare_packets_.swap(packets);
    if (spare_events_.capacity() < events.capacity()) spare_events_.swap(events);
  }
  flushing_ = false;
  ScheduleTimer();
  if (after_flush_) after_flush_();
}

void VsockNode::ScheduleTimer() {
  const absl::Time next = engine_->NextDeadline().value_or(absl::InfiniteFuture());
  if (next == timer_deadline_) return;
  if (timer_ != 0) reactor_.CancelTimer(timer_);
  timer_ = 0;
  timer_deadline_ = next;
  if (next == absl::InfiniteFuture()) return;
  timer_ = reactor_.RunAt(next, [this, alive = alive_] {
    if (!*alive) return;
    timer_ = 0;
    timer_deadline_ = absl::InfiniteFuture();
    engine_->OnTimer(reactor_.Now(), actions_);
    Flush();
  });
}

}  // namespace vsock
}  // namespace vrpc
