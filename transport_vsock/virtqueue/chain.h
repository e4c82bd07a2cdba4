// File: transport_vsock/virtqueue/chain.h
//
// Chain: one descriptor chain taken from the available ring by a DeviceQueue,
// as a PRIVATE copy. Every descriptor was read from guest memory exactly once
// while the chain was walked and validated; nothing in a Chain refers back to
// the descriptor table, so the guest rewriting its ring afterwards changes
// nothing here (HARDENING row 7).
//
// Invariants guaranteed by the walker (DeviceQueue::Pop):
//   - device-readable descriptors come first, then device-writable ones;
//   - readable_bytes() + writable_bytes() <= UINT32_MAX;
//   - every descriptor with len > 0 lies in mapped guest memory (it may span
//     adjacent regions; never a hole);
//   - at least one descriptor (zero-length descriptors are kept).
//
// Chain also provides byte access to the buffers it describes, in the
// chain's byte space: readable bytes [0, readable_bytes()) in descriptor
// order, writable bytes [0, writable_bytes()) likewise. A range may span any
// number of descriptors (a 44-byte header split 1+43, 43+1 or over three
// descriptors reads the same as one in a single descriptor), and a
// descriptor may span adjacent guest memory regions (walked piece by piece
// with GuestMemory::ForEachSegment). Those functions take the GuestMemory the
// chain was popped from; prefer the DeviceQueue wrappers, which also refuse
// to touch memory once the queue is broken.
//
// Thread-safety: a Chain is a value; const access from several threads is
// safe. Copyable and movable.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_CHAIN_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_CHAIN_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace virtqueue {

// One buffer of a chain, copied out of a descriptor.
struct ChainDescriptor {
  uint64_t addr = 0;  // guest address
  uint32_t len = 0;
  bool writable = false;  // VIRTQ_DESC_F_WRITE: device-writable

  friend bool operator==(const ChainDescriptor& a, const ChainDescriptor& b) {
    return a.addr == b.addr && a.len == b.len && a.writable == b.writable;
  }
};

class Chain {
 public:
  using Descriptors = absl::InlinedVector<ChainDescriptor, 4>;

  // Builds a chain from already-validated parts; used by the walker and by
  // tests. CHECKs the invariants listed in the file comment that do not need
  // guest memory (ordering, byte totals).
  Chain(uint16_t head, Descriptors descriptors, bool indirect);

  // The head descriptor index: what PushUsed() returns to the driver.
  uint16_t head() const { return head_; }
  // True when the chain went through an indirect table.
  bool indirect() const { return indirect_; }

  absl::Span<const ChainDescriptor> descriptors() const { return descriptors_; }
  absl::Span<const ChainDescriptor> readable() const {
    return absl::MakeConstSpan(descriptors_).subspan(0, readable_count_);
  }
  absl::Span<const ChainDescriptor> writable() const {
    return absl::MakeConstSpan(descriptors_).subspan(readable_count_);
  }
  uint32_t readable_bytes() const { return readable_bytes_; }
  uint32_t writable_bytes() const { return writable_bytes_; }

 private:
  uint16_t head_;
  bool indirect_;
  Descriptors descriptors_;
  size_t readable_count_ = 0;
  uint32_t readable_bytes_ = 0;
  uint32_t writable_bytes_ = 0;
};

// Calls |fn| for each host piece of readable bytes [offset, offset + len) of
// |chain|, in order, reporting each piece to |memory|'s observer as a read
// (handing out the bytes counts as reading them). Checks the whole range
// first: kOutOfRange, without calling |fn|, if offset + len exceeds
// readable_bytes() or any piece is unmapped in |memory|. len == 0: OK, no
// call. The pointers stay valid while |memory| (or its keepalive) lives.
absl::Status ForEachReadableSegment(
    const GuestMemory& memory, const Chain& chain, uint64_t offset, uint64_t len,
    absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)> fn);

// The same over writable bytes, reported as writes.
absl::Status ForEachWritableSegment(
    const GuestMemory& memory, const Chain& chain, uint64_t offset, uint64_t len,
    absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)> fn);

// Copies readable bytes [offset, offset + out.size()) into |out|, reading
// each guest byte once. Errors as ForEachReadableSegment; |out| is untouched
// on error. A device reads a fixed-size header with this (a chain shorter
// than the header gives kOutOfRange).
absl::Status ReadFromChain(const GuestMemory& memory, const Chain& chain,
                           uint64_t offset, absl::Span<uint8_t> out);

// Copies |in| into writable bytes [offset, offset + in.size()). Errors as
// ForEachWritableSegment; guest memory is untouched on error.
absl::Status WriteToChain(const GuestMemory& memory, const Chain& chain,
                          uint64_t offset, absl::Span<const uint8_t> in);

}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_CHAIN_H_
