// File: transport_vsock/virtqueue/guest_memory.h
//
// GuestMemory: the guest's physical address space as the host sees it — a
// set of regions, each mapping [guest_addr, guest_addr + size) to host memory
// at host_addr. In the device role the regions are the vhost-user memory
// table's mmaps; in the driver role (and in tests) they describe the driver's
// own shared buffers and the addresses it gives the device.
//
// Every translation is of a RANGE (addr, len), never of a bare address, with
// overflow checks (HARDENING row 4):
//
//   Translate(addr, len)        the whole range inside ONE region -> pointer
//   ForEachSegment(addr, len)   a range that may cross ADJACENT regions,
//                               walked region by region (iovec style); a hole
//                               anywhere in the range is an error
//   CopyFrom / CopyTo           copies built on ForEachSegment
//
// Empty ranges (len == 0): Translate refuses them (kInvalidArgument) because
// there is no byte to point at, and a pointer for an empty range is how
// "translate without a length" bugs start (CVE-2020-10725). ForEachSegment,
// CopyFrom and CopyTo accept them anywhere, do nothing and touch nothing.
//
// Lifetime: GuestMemory is a cheap, copyable, immutable value. It does not
// own the mappings itself; |keepalive| (given to Create) does — e.g. the
// vhost-user layer's object that munmaps its regions in its destructor. Every
// copy of a GuestMemory shares |keepalive|, so anything that holds a copy (a
// DeviceQueue) or the keepalive (a zero-copy Slice over guest memory, via
// keepalive()) keeps the regions mapped. When the memory table changes, the
// owner builds a new GuestMemory; old copies keep the old mappings alive until
// they are dropped.
//
// Observation (tests): an optional GuestMemoryObserver sees every read and
// write made through CopyFrom/CopyTo and through the ring code's explicit
// ObserveRead/ObserveWrite calls. Unset, it costs one predictable branch.
//
// Thread-safety: all methods are const and thread-safe. The memory behind
// the pointers is shared with the guest and may change at any time; read it
// once into private memory (ring.h ReadOnceCopy, CopyFrom).
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_GUEST_MEMORY_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_GUEST_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vrpc {
namespace virtqueue {

// One mapped range of guest physical memory.
struct MemoryRegion {
  uint64_t guest_addr = 0;
  uint64_t size = 0;
  uint8_t* host_addr = nullptr;
};

// Sees guest-memory accesses (for tests: read-once checking, counting,
// asserting that a broken queue touches nothing). Implementations must be
// cheap and must not call back into the queue. Called on the accessing
// thread.
class GuestMemoryObserver {
 public:
  virtual ~GuestMemoryObserver() = default;
  virtual void OnRead(uint64_t guest_addr, uint64_t len) = 0;
  virtual void OnWrite(uint64_t guest_addr, uint64_t len) = 0;
};

class GuestMemory {
 public:
  // Validates and sorts |regions|: each must have size > 0, a non-null
  // host_addr, and neither guest_addr + size nor host_addr + size may
  // overflow (so the last byte of the address space, 2^64 - 1, is never
  // mapped); guest ranges must not overlap (host ranges may alias). An empty
  // list is valid: nothing is mapped. |keepalive| (may be null) owns the
  // mappings; see the file comment. Returns kInvalidArgument otherwise.
  static absl::StatusOr<GuestMemory> Create(std::vector<MemoryRegion> regions,
                                            std::shared_ptr<const void> keepalive);

  // Nothing mapped; every non-empty translation fails.
  GuestMemory();

  // Returns the host address of [addr, addr + len). Requires len > 0
  // (kInvalidArgument otherwise) and the whole range inside one region
  // (kOutOfRange otherwise, including when addr + len overflows or the range
  // straddles two adjacent regions: use ForEachSegment for payloads).
  absl::StatusOr<uint8_t*> Translate(uint64_t addr, uint64_t len) const;

  // Checks that [addr, addr + len) is mapped without holes (it may span
  // adjacent regions), and only then calls |fn| once per region piece, in
  // address order, with the piece's guest address and host bytes. Returns
  // kOutOfRange, without calling |fn| at all, if any byte is unmapped or
  // addr + len overflows. len == 0: returns OK, never calls |fn|. Does not
  // notify the observer (the caller accesses the bytes).
  absl::Status ForEachSegment(
      uint64_t addr, uint64_t len,
      absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)> fn) const;

  // A range's host bytes, one per region piece (AppendSegments).
  struct Segment {
    uint64_t guest_addr = 0;
    absl::Span<uint8_t> host;
  };
  using Segments = absl::InlinedVector<Segment, 4>;
  // Appends the region pieces of [addr, addr + len) to |out|, in address
  // order, and returns true; false if any byte is unmapped or addr + len
  // overflows (|out| may then hold some of the pieces: discard it). One
  // region lookup per piece: the check and the translation in one walk, for
  // callers that check a whole chain before touching any of it.
  bool AppendSegments(uint64_t addr, uint64_t len, Segments& out) const;

  // Checks the whole range like ForEachSegment, then copies guest
  // [addr, addr + out.size()) into |out|, reading each guest byte once
  // (notifies OnRead per piece). On error |out| is untouched.
  absl::Status CopyFrom(uint64_t addr, absl::Span<uint8_t> out) const;

  // Checks the whole range, then copies |in| to guest [addr, addr + in.size())
  // (notifies OnWrite per piece). On error guest memory is untouched.
  absl::Status CopyTo(uint64_t addr, absl::Span<const uint8_t> in) const;

  // True when [addr, addr + len) is mapped (possibly across adjacent
  // regions). len == 0 is always mapped.
  bool IsMapped(uint64_t addr, uint64_t len) const;

  // The regions, sorted by guest_addr.
  absl::Span<const MemoryRegion> regions() const;

  // What keeps the mappings alive; share it with anything (a Slice release
  // hook) that holds pointers into guest memory beyond this object.
  const std::shared_ptr<const void>& keepalive() const;

  // Returns a copy of this memory that reports accesses to |observer| (or
  // to nobody, with nullptr). Does not take ownership; |observer| must
  // outlive every copy that refers to it.
  GuestMemory WithObserver(GuestMemoryObserver* observer) const;
  GuestMemoryObserver* observer() const { return observer_; }

  // For ring code that accesses guest memory through pointers obtained from
  // Translate: report the access to the observer, if any. Zero work when no
  // observer is set.
  void ObserveRead(uint64_t guest_addr, uint64_t len) const {
    if (observer_ != nullptr) observer_->OnRead(guest_addr, len);
  }
  void ObserveWrite(uint64_t guest_addr, uint64_t len) const {
    if (observer_ != nullptr) observer_->OnWrite(guest_addr, len);
  }

 private:
  struct State;
  explicit GuestMemory(std::shared_ptr<const State> state);

  // The region holding |addr|, or nullptr.
  const MemoryRegion* FindRegion(uint64_t addr) const;

  std::shared_ptr<const State> state_;
  GuestMemoryObserver* observer_ = nullptr;
};

}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_GUEST_MEMORY_H_
