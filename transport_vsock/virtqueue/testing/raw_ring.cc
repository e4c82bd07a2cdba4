#include "transport_vsock/virtqueue/testing/raw_ring.h"

#include <cstring>

#include "core/base/logging.h"

namespace vrpc {
namespace virtqueue {
namespace testing {
namespace {

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

RingLayout RingLayout::Packed(uint32_t size, uint64_t base, bool event_idx) {
  RingLayout l;
  l.size = size;
  l.event_idx = event_idx;
  l.desc_addr = AlignUp(base, kDescTableAlign);
  l.avail_addr = l.desc_addr + DescTableBytes(size);
  l.used_addr = AlignUp(l.avail_addr + AvailRingBytes(size, true), kUsedRingAlign);
  return l;
}

uint64_t RingLayout::end() const { return used_addr + UsedRingBytes(size, true); }

DeviceQueueConfig RingLayout::DeviceConfig(uint32_t next_avail) const {
  DeviceQueueConfig c;
  c.size = size;
  c.desc_addr = desc_addr;
  c.avail_addr = avail_addr;
  c.used_addr = used_addr;
  c.next_avail = next_avail;
  c.event_idx = event_idx;
  return c;
}

DriverQueueConfig RingLayout::DriverConfig() const {
  DriverQueueConfig c;
  c.size = size;
  c.desc_addr = desc_addr;
  c.avail_addr = avail_addr;
  c.used_addr = used_addr;
  c.event_idx = event_idx;
  return c;
}

RawRing::RawRing(FakeGuestMemory* memory, const RingLayout& layout)
    : memory_(memory), layout_(layout) {
  VRPC_CHECK(IsValidQueueSize(layout.size)) << layout.size;
}

uint16_t RawRing::Load16(uint64_t addr) const {
  uint8_t b[2];
  memory_->Read(addr, absl::MakeSpan(b));
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}

void RawRing::Store16(uint64_t addr, uint16_t v) {
  const uint8_t b[2] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
  memory_->Write(addr, b);
}

uint32_t RawRing::Load32(uint64_t addr) const {
  return uint32_t{Load16(addr)} | (uint32_t{Load16(addr + 2)} << 16);
}

void RawRing::Store32(uint64_t addr, uint32_t v) {
  Store16(addr, static_cast<uint16_t>(v));
  Store16(addr + 2, static_cast<uint16_t>(v >> 16));
}

void RawRing::SetDesc(uint32_t index, const Descriptor& d) {
  VRPC_CHECK(index < layout_.size) << index;
  WriteDescAt(layout_.desc_addr + kDescSize * index, d);
}

Descriptor RawRing::GetDesc(uint32_t index) const {
  VRPC_CHECK(index < layout_.size) << index;
  uint8_t raw[kDescSize];
  memory_->Read(layout_.desc_addr + kDescSize * index, absl::MakeSpan(raw));
  return ReadDescriptor(raw);
}

void RawRing::WriteDescAt(uint64_t guest_addr, const Descriptor& d) {
  uint8_t raw[kDescSize];
  WriteDescriptor(raw, d);
  memory_->Write(guest_addr, raw);
}

void RawRing::SetAvailEntry(uint32_t slot, uint16_t head) {
  VRPC_CHECK(slot < layout_.size) << slot;
  Store16(layout_.avail_addr + kAvailRingOffset + 2 * uint64_t{slot}, head);
}

uint16_t RawRing::GetAvailEntry(uint32_t slot) const {
  VRPC_CHECK(slot < layout_.size) << slot;
  return Load16(layout_.avail_addr + kAvailRingOffset + 2 * uint64_t{slot});
}

void RawRing::SetAvailIdx(uint16_t idx) { Store16(layout_.avail_addr + kAvailIdxOffset, idx); }
uint16_t RawRing::avail_idx() const { return Load16(layout_.avail_addr + kAvailIdxOffset); }
void RawRing::SetAvailFlags(uint16_t flags) {
  Store16(layout_.avail_addr + kAvailFlagsOffset, flags);
}
void RawRing::SetUsedEvent(uint16_t v) {
  Store16(layout_.avail_addr + UsedEventOffset(layout_.size), v);
}

void RawRing::PushAvail(uint16_t head) {
  const uint16_t idx = avail_idx();
  SetAvailEntry(idx & (layout_.size - 1), head);
  SetAvailIdx(static_cast<uint16_t>(idx + 1));
}

uint16_t RawRing::used_idx() const { return Load16(layout_.used_addr + kUsedIdxOffset); }
void RawRing::SetUsedIdx(uint16_t idx) { Store16(layout_.used_addr + kUsedIdxOffset, idx); }
uint16_t RawRing::used_flags() const { return Load16(layout_.used_addr + kUsedFlagsOffset); }
uint16_t RawRing::avail_event() const {
  return Load16(layout_.used_addr + AvailEventOffset(layout_.size));
}

uint32_t RawRing::used_id(uint32_t slot) const {
  VRPC_CHECK(slot < layout_.size) << slot;
  return Load32(layout_.used_addr + kUsedRingOffset + kUsedElemSize * slot);
}

uint32_t RawRing::used_len(uint32_t slot) const {
  VRPC_CHECK(slot < layout_.size) << slot;
  return Load32(layout_.used_addr + kUsedRingOffset + kUsedElemSize * slot + 4);
}

void RawRing::SetUsedElem(uint32_t slot, uint32_t id, uint32_t len) {
  VRPC_CHECK(slot < layout_.size) << slot;
  const uint64_t addr = layout_.used_addr + kUsedRingOffset + kUsedElemSize * slot;
  Store32(addr, id);
  Store32(addr + 4, len);
}

}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc
