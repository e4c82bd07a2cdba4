#include "transport_vsock/device/testing/host_harness.h"

#include <utility>

namespace vrpc {
namespace vsock {
namespace testing {

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed * 7 + (i >> 9)) & 0xff);
  return s;
}

void HostHarness::QueueSink::SendToPeer(std::vector<Packet>& packets) {
  for (Packet& p : packets) queue.push_back(std::move(p));
  packets.clear();
}

HostHarness::~HostHarness() { host_.reset(); }

absl::Status HostHarness::Start(const std::string& uds_path, EngineConfig guest) {
  VsockHostOptions options;
  options.guest_cid = kGuestCid;
  options.uds_path = uds_path;
  absl::StatusOr<std::unique_ptr<VsockHost>> host = VsockHost::Create(options, reactor_, sink_);
  if (!host.ok()) return host.status();
  host_ = *std::move(host);
  guest.local_cid = kGuestCid;
  guest.peer_cid = kCidHost;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(guest);
  if (!engine.ok()) return engine.status();
  guest_ = *std::move(engine);
  return absl::OkStatus();
}

bool HostHarness::Settle() {
  for (int round = 0; round < 100000; ++round) {
    bool busy = reactor_.RunUntilIdle() > 0;
    while (!sink_.queue.empty()) {
      Packet p = std::move(sink_.queue.front());
      sink_.queue.pop_front();
      guest_->OnPacket(p.header, std::move(p.payload), reactor_.Now(), guest_out_);
      busy = true;
    }
    busy |= DeliverGuestOutput();
    if (!busy) return true;
  }
  return false;
}

bool HostHarness::DeliverGuestOutput() {
  bool any = false;
  for (Event& e : guest_out_.events) guest_events_.push_back(std::move(e));
  guest_out_.events.clear();
  std::vector<Packet> packets = std::move(guest_out_.packets);
  guest_out_.packets.clear();
  for (Packet& p : packets) {
    if (host_ != nullptr) host_->OnGuestPacket(p.header, std::move(p.payload));
    any = true;
  }
  return any;
}

bool HostHarness::GuestHas(ConnId id, EventType type) const {
  for (const Event& e : guest_events_) {
    if (e.conn == id && e.type == type) return true;
  }
  return false;
}

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc
