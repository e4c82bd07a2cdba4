#include "transport_vsock/loopback/loopback.h"

#include <algorithm>
#include <utility>

#include "absl/memory/memory.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {

std::string SideName(Side side) { return side == Side::kHost ? "host" : "guest"; }

// ---------------------------------------------------------------------------
// LoopbackEndpoint

void LoopbackEndpoint::Flush() {
  for (Event& e : actions_.events) events_.push_back(std::move(e));
  link_.Enqueue(side_, actions_.packets);
  actions_.Clear();
}

absl::StatusOr<ConnId> LoopbackEndpoint::Connect(uint32_t peer_port, SocketType type,
                                                 uint32_t local_port) {
  auto id = engine_->Connect(peer_port, type, link_.now(), actions_, local_port);
  Flush();
  return id;
}

absl::Status LoopbackEndpoint::Listen(uint32_t port, size_t backlog, SocketType type) {
  return engine_->Listen(port, type, backlog);
}

void LoopbackEndpoint::Unlisten(uint32_t port) {
  engine_->Unlisten(port, actions_);
  Flush();
}

std::optional<ConnId> LoopbackEndpoint::Accept(uint32_t port) {
  return engine_->Accept(port);
}

absl::StatusOr<size_t> LoopbackEndpoint::Write(ConnId id, absl::string_view bytes) {
  SliceChain data(Slice::Copy(bytes));
  return Send(id, data);
}

absl::StatusOr<size_t> LoopbackEndpoint::Send(ConnId id, SliceChain& data) {
  auto sent = engine_->Send(id, data, link_.now(), actions_);
  Flush();
  return sent;
}

absl::Status LoopbackEndpoint::SendMessage(ConnId id, absl::string_view message,
                                           bool end_of_record) {
  absl::Status s = engine_->SendMessage(id, SliceChain(Slice::Copy(message)),
                                        end_of_record, link_.now(), actions_);
  Flush();
  return s;
}

absl::StatusOr<SliceChain> LoopbackEndpoint::ReadSlices(ConnId id, size_t max) {
  auto data = engine_->Read(id, max, actions_);
  Flush();
  return data;
}

absl::StatusOr<std::string> LoopbackEndpoint::Read(ConnId id, size_t max) {
  auto data = ReadSlices(id, max);
  if (!data.ok()) return data.status();
  return data->ToString();
}

absl::StatusOr<std::optional<Message>> LoopbackEndpoint::ReadMessage(ConnId id) {
  auto msg = engine_->ReadMessage(id, actions_);
  Flush();
  return msg;
}

absl::Status LoopbackEndpoint::Shutdown(ConnId id, uint32_t flags) {
  absl::Status s = engine_->Shutdown(id, flags, link_.now(), actions_);
  Flush();
  return s;
}

void LoopbackEndpoint::Close(ConnId id) {
  engine_->Close(id, link_.now(), actions_);
  Flush();
}

absl::Status LoopbackEndpoint::SetBufferSize(ConnId id, uint32_t size) {
  absl::Status s = engine_->SetBufferSize(id, size, actions_);
  Flush();
  return s;
}

absl::StatusOr<ConnInfo> LoopbackEndpoint::Info(ConnId id) const {
  return engine_->GetInfo(id, link_.now());
}

std::vector<EventType> LoopbackEndpoint::EventsFor(ConnId id) const {
  std::vector<EventType> types;
  for (const Event& e : events_) {
    if (e.conn == id) types.push_back(e.type);
  }
  return types;
}

bool LoopbackEndpoint::HasEvent(ConnId id, EventType type) const {
  return std::any_of(events_.begin(), events_.end(),
                     [&](const Event& e) { return e.conn == id && e.type == type; });
}

// ---------------------------------------------------------------------------
// LoopbackLink

LoopbackLink::Options::Options() {
  host.local_cid = kCidHost;
  host.peer_cid = 3;
  host.port_seed = 0x1000;
  guest.local_cid = 3;
  guest.peer_cid = kCidHost;
  guest.port_seed = 0x2000;
}

absl::StatusOr<std::unique_ptr<LoopbackLink>> LoopbackLink::Create(const Options& options) {
  auto host = Engine::Create(options.host);
  if (!host.ok()) return host.status();
  auto guest = Engine::Create(options.guest);
  if (!guest.ok()) return guest.status();
  auto link = absl::WrapUnique(new LoopbackLink(options.start));
  link->host_ = absl::WrapUnique(
      new LoopbackEndpoint(*link, Side::kHost, *std::move(host)));
  link->guest_ = absl::WrapUnique(
      new LoopbackEndpoint(*link, Side::kGuest, *std::move(guest)));
  return link;
}

void LoopbackLink::Enqueue(Side from, std::vector<Packet>& packets) {
  std::deque<Packet>& queue = from == Side::kHost ? to_guest_ : to_host_;
  for (Packet& p : packets) queue.push_back(std::move(p));
  packets.clear();
  max_queued_ = std::max(max_queued_, queue.size());
}

void LoopbackLink::Inject(Side from, Packet packet) {
  std::vector<Packet> one;
  one.push_back(std::move(packet));
  Enqueue(from, one);
}

size_t LoopbackLink::Queued(Side to) const {
  return to == Side::kHost ? to_host_.size() : to_guest_.size();
}

bool LoopbackLink::DeliverOne(Side to) {
  std::deque<Packet>& queue = to == Side::kHost ? to_host_ : to_guest_;
  if (queue.empty()) return false;
  Packet packet = std::move(queue.front());
  queue.pop_front();
  const Side from = to == Side::kHost ? Side::kGuest : Side::kHost;
  if (tap_ && tap_(from, packet) == TapVerdict::kDrop) return true;
  if (trace_) trace_(from, packet);
  LoopbackEndpoint& dst = endpoint(to);
  dst.engine_->OnPacket(packet.header, std::move(packet.payload), now_, dst.actions_);
  dst.Flush();
  return true;
}

size_t LoopbackLink::Pump(size_t max_packets) {
  size_t delivered = 0;
  while (delivered < max_packets && (!to_host_.empty() || !to_guest_.empty())) {
    if (DeliverOne(Side::kGuest)) ++delivered;
    if (delivered < max_packets && DeliverOne(Side::kHost)) ++delivered;
  }
  return delivered;
}

void LoopbackLink::AdvanceTime(absl::Duration d) {
  const absl::Time end = now_ + d;
  while (true) {
    absl::Time next = end;
    for (LoopbackEndpoint* ep : {host_.get(), guest_.get()}) {
      auto deadline = ep->engine_->NextDeadline();
      if (deadline.has_value()) next = std::min(next, std::max(*deadline, now_));
    }
    now_ = next;
    for (LoopbackEndpoint* ep : {host_.get(), guest_.get()}) {
      ep->engine_->OnTimer(now_, ep->actions_);
      ep->Flush();
    }
    Pump();
    if (now_ >= end) return;
  }
}

}  // namespace vsock
}  // namespace vrpc
