// File: transport_vsock/virtqueue/internal/chain_walker.h
//
// ChainWalker: turns a head index into a validated, privately copied Chain.
// Implementation detail of DeviceQueue (not visible outside this package).
//
// Every descriptor is read from guest memory exactly once. The walk is
// bounded by a visited set per table: a descriptor index seen twice in the
// same table is a loop, detected on the second visit BEFORE the descriptor is
// re-read. So a walk reads at most queue_size descriptors from the
// descriptor table plus at most queue_size from one indirect table
// (VIRTIO 1.2 §2.7.5.3.1: a chain is no longer than the queue size), i.e.
// fewer than 2 * queue_size descriptors, whatever the guest wrote.
//
// Violations (all returned as errors; the caller latches the queue broken):
//   kInvalidArgument: loop; next >= table size; INDIRECT not negotiated;
//     indirect inside an indirect table; INDIRECT together with NEXT;
//     indirect len 0, not a multiple of 16, or more than queue_size entries;
//     a device-readable descriptor after a device-writable one; total length
//     above 2^32 - 1.
//   kOutOfRange: indirect table or buffer not mapped (holes, overflow).
//
// Not thread-safe (one walker per queue, used from the queue's thread).
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_INTERNAL_CHAIN_WALKER_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_INTERNAL_CHAIN_WALKER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "transport_vsock/virtqueue/chain.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace virtqueue {
namespace internal {

class ChainWalker {
 public:
  // |queue_size| must be valid (CHECKed). |indirect_allowed|: whether
  // VIRTIO_F_INDIRECT_DESC was negotiated.
  ChainWalker(uint32_t queue_size, bool indirect_allowed);

  // Walks the chain starting at |head| (< queue size, CHECKed) in the
  // descriptor table at host |table| / guest |table_addr| (already
  // translated for the whole table). Indirect tables and buffers are
  // translated through |memory|; descriptor reads are reported to its
  // observer.
  absl::StatusOr<Chain> Walk(const GuestMemory& memory, const uint8_t* table,
                             uint64_t table_addr, uint16_t head);

  // Descriptors read from guest memory since construction.
  uint64_t descriptors_read() const { return descriptors_read_; }

 private:
  struct Table;
  class Builder;

  void NextStamp();
  absl::Status EnterIndirect(const GuestMemory& memory, const Descriptor& d,
                             uint16_t index, Table* table);

  const uint32_t queue_size_;
  const bool indirect_allowed_;
  // visited[i] == stamp_ when index i was visited during the current walk.
  std::vector<uint32_t> direct_visited_;
  std::vector<uint32_t> indirect_visited_;
  uint32_t stamp_ = 0;
  uint64_t descriptors_read_ = 0;
};

}  // namespace internal
}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_INTERNAL_CHAIN_WALKER_H_
