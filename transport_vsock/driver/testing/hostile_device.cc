#include "transport_vsock/driver/testing/hostile_device.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace vsock {
namespace testing {
namespace {

constexpr uint64_t kVersion1 = uint64_t{1} << 32;
constexpr uint64_t kEventIdx = uint64_t{1} << 29;

}  // namespace

HostileDevice::HostileDevice(uint64_t guest_cid)
    : features_(kVersion1 | kEventIdx), config_cid_(guest_cid) {}

absl::StatusOr<std::vector<uint8_t>> HostileDevice::ReadConfig(uint32_t offset, uint32_t size) {
  uint8_t config[8];
  for (int i = 0; i < 8; ++i) config[i] = static_cast<uint8_t>(config_cid_ >> (8 * i));
  if (offset > 8 || size > 8 - offset) return absl::OutOfRangeError("config");
  return std::vector<uint8_t>(config + offset, config + offset + size);
}

void HostileDevice::OnRingStarted(const vhost_user::RingConfig& ring,
                                  std::shared_ptr<const vhost_user::MemoryTable> memory) {
  if (ring.index >= 3) return;
  std::vector<virtqueue::MemoryRegion> regions;
  for (const vhost_user::MappedRegion& r : memory->regions()) {
    regions.push_back({r.guest_addr, r.size, r.host_addr});
  }
  auto guest = virtqueue::GuestMemory::Create(std::move(regions), memory);
  if (!guest.ok()) return;
  virtqueue::DeviceQueueConfig c;
  c.size = ring.num;
  c.desc_addr = ring.desc_guest_addr;
  c.avail_addr = ring.avail_guest_addr;
  c.used_addr = ring.used_guest_addr;
  c.next_avail = ring.base;
  c.event_idx = ring.event_idx;
  auto queue = virtqueue::DeviceQueue::Create(*std::move(guest), c);
  if (!queue.ok()) return;
  queues_[ring.index] = *std::move(queue);
  rings_[ring.index] = ring;
  memory_ = std::move(memory);
}

uint16_t HostileDevice::OnRingStopped(uint32_t index) {
  if (index >= 3 || queues_[index] == nullptr) return 0;
  const uint16_t last = queues_[index]->last_avail_idx();
  queues_[index].reset();
  rings_[index] = vhost_user::RingConfig();
  return last;
}

void HostileDevice::OnReset() {
  for (uint32_t i = 0; i < 3; ++i) (void)OnRingStopped(i);
  memory_.reset();
}

void HostileDevice::Interrupt(uint32_t ring) {
  if (ring >= 3 || rings_[ring].call == nullptr) return;
  const uint64_t one = 1;
  (void)!::write(rings_[ring].call->get(), &one, sizeof(one));
}

void HostileDevice::Notify(uint32_t ring) {
  if (queues_[ring] != nullptr && queues_[ring]->ShouldNotify()) Interrupt(ring);
}

Header HostileDevice::ToGuest(Op op, uint32_t src_port, uint32_t dst_port, uint32_t len) const {
  Header h;
  h.src_cid = kCidHost;
  h.dst_cid = config_cid_;
  h.src_port = src_port;
  h.dst_port = dst_port;
  h.len = len;
  h.type = static_cast<uint16_t>(SocketType::kStream);
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = 256 * 1024;
  return h;
}

int HostileDevice::DrainTx(bool respond, uint32_t used_len) {
  virtqueue::DeviceQueue* q = queues_[1].get();
  int n = 0;
  while (q != nullptr) {
    auto chain = q->Pop();
    if (!chain.ok() || !chain->has_value()) break;
    uint8_t raw[kHeaderSize];
    if (q->ReadChain(**chain, 0, absl::MakeSpan(raw)).ok()) {
      const Header h = *DecodeHeader(raw);
      tx_headers_.push_back(h);
      if (respond && h.op_code() == Op::kRequest) {
        DeliverRx(ToGuest(Op::kResponse, h.dst_port, h.src_port), "");
      }
    }
    if (used_len > (*chain)->writable_bytes()) {
      RawUsed(1, (*chain)->head(), used_len);  // DeviceQueue refuses to lie
    } else {
      (void)q->PushUsed((*chain)->head(), used_len);
    }
    ++n;
  }
  if (q != nullptr && n > 0) Notify(1);
  return n;
}

bool HostileDevice::DeliverRx(const Header& h, const std::string& payload,
                              std::optional<uint32_t> used_len) {
  virtqueue::DeviceQueue* q = queues_[0].get();
  if (q == nullptr) return false;
  auto chain = q->Pop();
  if (!chain.ok() || !chain->has_value()) return false;
  const virtqueue::Chain& c = **chain;
  std::string bytes(kHeaderSize, '\0');
  EncodeHeaderTo(h, reinterpret_cast<uint8_t*>(bytes.data()));
  bytes += payload;
  const size_t n = std::min<size_t>(bytes.size(), c.writable_bytes());
  (void)q->WriteChain(c, 0, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), n));
  const uint32_t len = used_len.value_or(static_cast<uint32_t>(n));
  if (len > c.writable_bytes()) {
    // DeviceQueue refuses lengths beyond the chain: lie behind its back.
    return RawUsed(0, c.head(), len);
  }
  (void)q->PushUsed(c.head(), len);
  Notify(0);
  return true;
}

bool HostileDevice::PostEvent(uint32_t id, uint32_t len) {
  virtqueue::DeviceQueue* q = queues_[2].get();
  if (q == nullptr) return false;
  auto chain = q->Pop();
  if (!chain.ok() || !chain->has_value()) return false;
  const uint8_t raw[4] = {static_cast<uint8_t>(id), static_cast<uint8_t>(id >> 8),
                          static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 24)};
  const uint32_t n = std::min<uint32_t>(4, (*chain)->writable_bytes());
  (void)q->WriteChain(**chain, 0, absl::MakeConstSpan(raw, n));
  if (len > (*chain)->writable_bytes()) return RawUsed(2, (*chain)->head(), len);
  (void)q->PushUsed((*chain)->head(), len);
  Notify(2);
  return true;
}

bool HostileDevice::RawUsed(uint32_t ring, uint32_t id, uint32_t len, uint16_t advance) {
  if (ring >= 3 || queues_[ring] == nullptr || memory_ == nullptr) return false;
  const vhost_user::RingConfig& r = rings_[ring];
  const uint64_t ring_bytes = virtqueue::kUsedRingOffset + virtqueue::kUsedElemSize * r.num;
  uint8_t* used = memory_->GuestToHost(r.used_guest_addr, ring_bytes);
  if (used == nullptr) return false;
  const uint16_t idx = virtqueue::AcquireLoad16(used + virtqueue::kUsedIdxOffset);
  uint8_t* elem = used + virtqueue::kUsedRingOffset +
                  virtqueue::kUsedElemSize * static_cast<uint64_t>(idx & (r.num - 1));
  virtqueue::RelaxedStore32(elem, id);
  virtqueue::RelaxedStore32(elem + 4, len);
  virtqueue::StoreRelease16(used + virtqueue::kUsedIdxOffset, static_cast<uint16_t>(idx + advance));
  Interrupt(ring);
  return true;
}

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc
