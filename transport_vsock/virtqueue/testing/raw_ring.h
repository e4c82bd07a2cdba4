// File: transport_vsock/virtqueue/testing/raw_ring.h
//
// RawRing: direct, unvalidated access to a split ring in a FakeGuestMemory,
// for writing HOSTILE rings in tests and fuzzers (testonly). A test plays a
// misbehaving driver (arbitrary descriptors, avail entries and indices) in
// front of a DeviceQueue, or a misbehaving device (arbitrary used entries)
// in front of a DriverQueue. Accesses are not observed.
//
// Not thread-safe. Does not own the memory; |memory| must outlive the ring.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_RAW_RING_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_RAW_RING_H_

#include <cstdint>

#include "transport_vsock/virtqueue/device_queue.h"
#include "transport_vsock/virtqueue/driver_queue.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"

namespace vrpc {
namespace virtqueue {
namespace testing {

struct RingLayout {
  uint32_t size = 0;
  uint64_t desc_addr = 0;
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
  bool event_idx = false;

  // The three parts packed from |base| (16-aligned), sized for the event
  // fields whether or not |event_idx| is set.
  static RingLayout Packed(uint32_t size, uint64_t base = kRegionA, bool event_idx = false);
  // First byte after the used ring.
  uint64_t end() const;

  DeviceQueueConfig DeviceConfig(uint32_t next_avail = 0) const;
  DriverQueueConfig DriverConfig() const;
};

class RawRing {
 public:
  RawRing(FakeGuestMemory* memory, const RingLayout& layout);

  const RingLayout& layout() const { return layout_; }

  // Descriptor table entry |index| (< size, CHECKed).
  void SetDesc(uint32_t index, const Descriptor& d);
  void SetDesc(uint32_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    SetDesc(index, Descriptor{addr, len, flags, next});
  }
  Descriptor GetDesc(uint32_t index) const;
  // A descriptor anywhere in guest memory (indirect tables).
  void WriteDescAt(uint64_t guest_addr, const Descriptor& d);

  // Driver side of the avail ring.
  void SetAvailEntry(uint32_t slot, uint16_t head);
  uint16_t GetAvailEntry(uint32_t slot) const;
  void SetAvailIdx(uint16_t idx);
  uint16_t avail_idx() const;
  void SetAvailFlags(uint16_t flags);
  void SetUsedEvent(uint16_t v);
  // ring[avail_idx % size] = head; ++avail_idx.
  void PushAvail(uint16_t head);

  // Device side of the used ring.
  uint16_t used_idx() const;
  void SetUsedIdx(uint16_t idx);
  uint16_t used_flags() const;
  uint16_t avail_event() const;
  uint32_t used_id(uint32_t slot) const;
  uint32_t used_len(uint32_t slot) const;
  void SetUsedElem(uint32_t slot, uint32_t id, uint32_t len);

 private:
  uint16_t Load16(uint64_t addr) const;
  void Store16(uint64_t addr, uint16_t v);
  uint32_t Load32(uint64_t addr) const;
  void Store32(uint64_t addr, uint32_t v);

  FakeGuestMemory* const memory_;
  const RingLayout layout_;
};

}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_RAW_RING_H_
