// File: transport_vsock/virtqueue/internal/ring_parts.h
//
// Validation and translation of a split ring's three parts, shared by
// DeviceQueue and DriverQueue. Implementation detail of this package.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_INTERNAL_RING_PARTS_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_INTERNAL_RING_PARTS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace virtqueue {
namespace internal {

// Host pointers to the three parts, each translated for its full extent.
struct RingParts {
  uint8_t* desc = nullptr;
  uint8_t* avail = nullptr;
  uint8_t* used = nullptr;
};

// Checks |size| (power of two in [1, 32768], at full width), the alignment
// of each part (16 / 2 / 4) and that each part (sized for |size| and
// |event_idx|) lies inside one region of |memory|. Returns kInvalidArgument
// for size/alignment, kOutOfRange for unmapped parts. Reads nothing.
absl::StatusOr<RingParts> TranslateRingParts(const GuestMemory& memory, uint64_t size,
                                             uint64_t desc_addr, uint64_t avail_addr,
                                             uint64_t used_addr, bool event_idx);

}  // namespace internal
}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_INTERNAL_RING_PARTS_H_
