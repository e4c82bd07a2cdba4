// File: transport_vsock/virtqueue/ring.h
//
// The split virtqueue layout (VIRTIO 1.2 §2.7) and the memory-ordering
// helpers every ring access goes through.
//
//   descriptor table  virtq_desc[N]      { le64 addr; le32 len; le16 flags; le16 next; }
//   available ring    virtq_avail        { le16 flags; le16 idx; le16 ring[N]; le16 used_event; }
//   used ring         virtq_used         { le16 flags; le16 idx;
//                                          { le32 id; le32 len; } ring[N]; le16 avail_event; }
//
// Memory ordering lives ONLY here (no fence or atomic builtin appears
// anywhere else in the virtqueue code). The rules, for a software peer on
// another CPU (a guest vCPU, or the other process of a virtio-user pair):
//
//   producer of entries (driver: avail; device: used)
//     write ring entries / descriptors       plain (relaxed) stores
//     PublishIdx = StoreRelease16(idx)        makes the entries visible first
//   consumer
//     AcquireLoad16(idx)                      entries read after this are at
//                                             least as new as the index
//     read entries                            relaxed loads / ReadOnceCopy
//   notification decisions (both sides)
//     publish idx; FullFence(); read the peer's event index or flags.
//     Without the full fence the store of our index can pass the load of
//     theirs (store->load reordering is allowed even on x86), and a
//     notification is lost.
//   re-arming notifications
//     write our event index / flags; FullFence(); re-read the peer's idx.
//
// These are "weak barriers" (CPU fences), right for peers that are CPUs. A
// driver talking to real PCI hardware would need I/O barriers instead
// (TODO(perf): add strong variants when the VFIO driver needs them).
//
// All multi-byte fields are little-endian (VIRTIO 1.0+); helpers convert.
//
// Every function here is a pure memory accessor: the caller has translated
// and bounds-checked the pointers (GuestMemory::Translate) and validated the
// indices. Thread-safe in the sense that concurrent access by the peer is the
// whole point; one side of a ring is driven by one thread.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_RING_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_RING_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vrpc {
namespace virtqueue {

// ---------------------------------------------------------------------------
// Layout constants
// ---------------------------------------------------------------------------

// virtq_desc.flags
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;

// virtq_avail.flags: the driver asks the device not to interrupt.
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;
// virtq_used.flags: the device asks the driver not to notify (kick).
inline constexpr uint16_t kUsedFlagNoNotify = 1;

// Feature bits relevant to the ring (VIRTIO 1.2 §6).
inline constexpr int kFeatureIndirectDesc = 28;
inline constexpr int kFeatureEventIdx = 29;

inline constexpr uint32_t kMaxQueueSize = 32768;

inline constexpr uint64_t kDescSize = 16;
inline constexpr uint64_t kUsedElemSize = 8;

// Required alignment of each part (VIRTIO 1.2 §2.7, table "Virtqueue Part
// Alignment").
inline constexpr uint64_t kDescTableAlign = 16;
inline constexpr uint64_t kAvailRingAlign = 2;
inline constexpr uint64_t kUsedRingAlign = 4;

// Byte offsets inside the parts.
inline constexpr uint64_t kAvailFlagsOffset = 0;
inline constexpr uint64_t kAvailIdxOffset = 2;
inline constexpr uint64_t kAvailRingOffset = 4;
inline constexpr uint64_t kUsedFlagsOffset = 0;
inline constexpr uint64_t kUsedIdxOffset = 2;
inline constexpr uint64_t kUsedRingOffset = 4;

// True when |size| is a power of two in [1, 32768]. Checked at full width:
// callers pass the untruncated value they received.
constexpr bool IsValidQueueSize(uint64_t size) {
  return size >= 1 && size <= kMaxQueueSize && (size & (size - 1)) == 0;
}

// Bytes of each part for a queue of |size| entries. The trailing event
// fields (used_event, avail_event) exist only with VIRTIO_F_EVENT_IDX.
constexpr uint64_t DescTableBytes(uint64_t size) { return kDescSize * size; }
constexpr uint64_t AvailRingBytes(uint64_t size, bool event_idx) {
  return kAvailRingOffset + 2 * size + (event_idx ? 2 : 0);
}
constexpr uint64_t UsedRingBytes(uint64_t size, bool event_idx) {
  return kUsedRingOffset + kUsedElemSize * size + (event_idx ? 2 : 0);
}
// Offsets of avail.used_event and used.avail_event.
constexpr uint64_t UsedEventOffset(uint64_t size) { return kAvailRingOffset + 2 * size; }
constexpr uint64_t AvailEventOffset(uint64_t size) {
  return kUsedRingOffset + kUsedElemSize * size;
}

// A descriptor in host byte order: a private copy, never a view of the ring.
struct Descriptor {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
  uint16_t next = 0;
};

// VIRTIO 1.2 §2.7.10 vring_need_event: true when moving the index from
// |old_idx| to |new_idx| crossed |event_idx| (the peer asked to be told once
// the index passes event_idx). All arithmetic wraps at 2^16.
constexpr bool NeedEvent(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) <
         static_cast<uint16_t>(new_idx - old_idx);
}

// ---------------------------------------------------------------------------
// Byte order
// ---------------------------------------------------------------------------

namespace ring_internal {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
inline uint16_t Le16(uint16_t v) { return __builtin_bswap16(v); }
inline uint32_t Le32(uint32_t v) { return __builtin_bswap32(v); }
inline uint64_t Le64(uint64_t v) { return __builtin_bswap64(v); }
#else
inline uint16_t Le16(uint16_t v) { return v; }
inline uint32_t Le32(uint32_t v) { return v; }
inline uint64_t Le64(uint64_t v) { return v; }
#endif
}  // namespace ring_internal

// ---------------------------------------------------------------------------
// Memory-ordering helpers. |p| points at an aligned little-endian field.
// ---------------------------------------------------------------------------

// Acquire load: ring entries read after this call are at least as recent as
// the returned index. Use for avail.idx (device) and used.idx (driver).
inline uint16_t AcquireLoad16(const uint8_t* p) {
  return ring_internal::Le16(
      __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE));
}

// Relaxed loads of one field, read exactly once (never re-fetched by the
// compiler). Use for ring entries after an AcquireLoad16 of the index, and for
// flags/event fields after a FullFence.
inline uint16_t RelaxedLoad16(const uint8_t* p) {
  return ring_internal::Le16(
      __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_RELAXED));
}
inline uint32_t RelaxedLoad32(const uint8_t* p) {
  return ring_internal::Le32(
      __atomic_load_n(reinterpret_cast<const uint32_t*>(p), __ATOMIC_RELAXED));
}

// Relaxed stores of ring entries, flags and event indices.
inline void RelaxedStore16(uint8_t* p, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(p), ring_internal::Le16(v),
                   __ATOMIC_RELAXED);
}
inline void RelaxedStore32(uint8_t* p, uint32_t v) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(p), ring_internal::Le32(v),
                   __ATOMIC_RELAXED);
}

// Release store: everything written before (entries, descriptors) is visible
// to a peer that acquire-loads the new index. Use for used.idx (device) and
// avail.idx (driver).
inline void StoreRelease16(uint8_t* p, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(p), ring_internal::Le16(v),
                   __ATOMIC_RELEASE);
}

// Full (store-load) fence. Between publishing our index / event and reading
// the peer's event / flags / index for a notification decision.
inline void FullFence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// Copies |n| bytes of shared memory into private memory in one pass. After
// this call the compiler may not re-fetch the source to materialize the copy
// (a compiler-only barrier): what was copied is what is used. The source may
// be unaligned (indirect tables, packet headers).
inline void ReadOnceCopy(void* dst, const uint8_t* src, size_t n) {
  std::memcpy(dst, src, n);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

// Copies private bytes into shared memory (payload written for the peer).
inline void WriteShared(uint8_t* dst, const void* src, size_t n) {
  std::memcpy(dst, src, n);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

// Reads one 16-byte descriptor at |p| (any alignment) into a private copy.
inline Descriptor ReadDescriptor(const uint8_t* p) {
  uint8_t raw[kDescSize];
  ReadOnceCopy(raw, p, sizeof(raw));
  Descriptor d;
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
  std::memcpy(&addr, raw + 0, 8);
  std::memcpy(&len, raw + 8, 4);
  std::memcpy(&flags, raw + 12, 2);
  std::memcpy(&next, raw + 14, 2);
  d.addr = ring_internal::Le64(addr);
  d.len = ring_internal::Le32(len);
  d.flags = ring_internal::Le16(flags);
  d.next = ring_internal::Le16(next);
  return d;
}

// Writes |d| as 16 little-endian bytes at |p| (driver side; any alignment).
inline void WriteDescriptor(uint8_t* p, const Descriptor& d) {
  uint8_t raw[kDescSize];
  const uint64_t addr = ring_internal::Le64(d.addr);
  const uint32_t len = ring_internal::Le32(d.len);
  const uint16_t flags = ring_internal::Le16(d.flags);
  const uint16_t next = ring_internal::Le16(d.next);
  std::memcpy(raw + 0, &addr, 8);
  std::memcpy(raw + 8, &len, 4);
  std::memcpy(raw + 12, &flags, 2);
  std::memcpy(raw + 14, &next, 2);
  WriteShared(p, raw, sizeof(raw));
}

}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_RING_H_
