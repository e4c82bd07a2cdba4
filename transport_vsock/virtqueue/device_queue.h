// File: transport_vsock/virtqueue/device_queue.h
//
// DeviceQueue: the device side of one split virtqueue whose rings live in
// guest memory (the host vhost-user device reads the guest's rings). Generic:
// it moves descriptor chains, it knows nothing about what they carry.
//
// Trust model: everything in guest memory is hostile and may change at any
// moment. The queue
//   - translates and bounds-checks the three ring parts once, at Create;
//   - acquire-loads avail.idx and rejects one that claims more than
//     queue-size new entries (HARDENING row 3);
//   - reads each avail entry and each descriptor exactly once into private
//     memory (row 7) and validates the chain completely before returning it
//     (rows 1, 2, 4, 5; see internal/chain_walker.h for the rules);
//   - on the first violation latches its BrokenLatch: every later call fails
//     with kFailedPrecondition without touching guest memory, until Reset()
//     (row 12). The caller should then report DEVICE_NEEDS_RESET.
//
// Typical device loop (interrupt mode, EVENT_IDX or not):
//
//   VRPC_RETURN_IF_ERROR(q.DisableNotifications());
//   for (;;) {
//     VRPC_ASSIGN_OR_RETURN(std::optional<Chain> chain, q.Pop());
//     if (!chain) {
//       VRPC_ASSIGN_OR_RETURN(bool more, q.EnableNotifications());
//       if (!more) break;
//       VRPC_RETURN_IF_ERROR(q.DisableNotifications());
//       continue;
//     }
//     ... q.ReadChain(*chain, 0, header) ... q.WriteChain(...) ...
//     VRPC_RETURN_IF_ERROR(q.PushUsed(chain->head(), written));
//   }
//   if (q.ShouldNotify()) call_eventfd.Signal();
//
// Thread-safety: not thread-safe; one thread drives a queue. The latch may be
// shared with other queues on other threads.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_DEVICE_QUEUE_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_DEVICE_QUEUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "transport_vsock/virtqueue/broken_latch.h"
#include "transport_vsock/virtqueue/chain.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/virtqueue/internal/chain_walker.h"

namespace vrpc {
namespace virtqueue {

// What the front-end configured (vhost-user SET_VRING_NUM / ADDR / BASE and
// the negotiated features). Values are taken at full width and validated.
struct DeviceQueueConfig {
  uint32_t size = 0;        // SET_VRING_NUM: power of two in [1, 32768]
  uint64_t desc_addr = 0;   // guest addresses of the three parts
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
  uint32_t next_avail = 0;  // SET_VRING_BASE: next avail index, <= 0xffff
  // Next used index. Unset: read used.idx from the ring once, at Create
  // (right after a reconnect the ring is the truth).
  std::optional<uint32_t> next_used;
  bool event_idx = false;      // VIRTIO_F_EVENT_IDX negotiated
  bool indirect_desc = false;  // VIRTIO_F_INDIRECT_DESC negotiated
};

// One completion for PushUsedBatch.
struct UsedElement {
  uint16_t head = 0;
  uint32_t len = 0;  // bytes the device wrote into the chain's writable part
};

struct DeviceQueueStats {
  uint64_t chains_popped = 0;
  uint64_t descriptors_read = 0;
  uint64_t used_pushed = 0;
};

class DeviceQueue {
 public:
  // Validates |config| (size, next_avail <= 0xffff, part alignment 16/2/4,
  // each part's full extent mapped inside one region of |memory|) and
  // returns a queue. Reads nothing from guest memory except used.idx when
  // config.next_used is unset. |latch| may be shared with the device's other
  // queues; null makes a private one. Returns kInvalidArgument for a bad
  // size, base or alignment, kOutOfRange for unmapped ring parts, and
  // kFailedPrecondition if |latch| is already broken.
  static absl::StatusOr<std::unique_ptr<DeviceQueue>> Create(
      GuestMemory memory, const DeviceQueueConfig& config,
      std::shared_ptr<BrokenLatch> latch = nullptr);

  DeviceQueue(const DeviceQueue&) = delete;
  DeviceQueue& operator=(const DeviceQueue&) = delete;

  // Takes the next available chain: nullopt when the ring is empty. On a
  // guest violation latches the queue broken and returns the violation
  // (kInvalidArgument / kOutOfRange); when already broken returns
  // kFailedPrecondition without touching guest memory. The returned chain is
  // "in flight" until PushUsed() returns its head.
  [[nodiscard]] absl::StatusOr<std::optional<Chain>> Pop();

  // Puts |head| on the used ring with |written_len| bytes written, and
  // publishes used.idx with release semantics. Returns kFailedPrecondition
  // when broken; kInvalidArgument (a bug in the caller, not the guest; the
  // queue is not latched) when |head| is not in flight or |written_len|
  // exceeds the chain's writable bytes. Nothing is written on error.
  [[nodiscard]] absl::Status PushUsed(uint16_t head, uint32_t written_len);

  // The same for several chains with a single used.idx publication. Validates
  // every element (and that no head repeats) before writing any.
  [[nodiscard]] absl::Status PushUsedBatch(absl::Span<const UsedElement> elements);

  // Whether the driver must be interrupted for the entries published since
  // the previous call: with EVENT_IDX, whether used.idx crossed
  // avail.used_event; otherwise, whether avail.flags lacks NO_INTERRUPT.
  // False when nothing was published since the previous call, and when the
  // queue is broken (then reads nothing).
  [[nodiscard]] bool ShouldNotify();

  // Asks the driver to kick on new buffers (EVENT_IDX: used.avail_event =
  // last_avail_idx(); otherwise clears used.flags NO_NOTIFY), then re-reads
  // avail.idx: true when buffers arrived meanwhile (process them; no kick
  // will come for them). Errors as Pop() for a lying avail.idx.
  [[nodiscard]] absl::StatusOr<bool> EnableNotifications();

  // Asks the driver not to kick (polling). Without EVENT_IDX sets used.flags
  // NO_NOTIFY. With EVENT_IDX it writes nothing: avail_event simply stays
  // behind, so the driver kicks at most once more until the next Enable.
  [[nodiscard]] absl::Status DisableNotifications();

  // Byte access to an in-flight chain's buffers (see chain.h). All return
  // kFailedPrecondition, touching nothing, once the queue is broken.
  [[nodiscard]] absl::Status ReadChain(const Chain& chain, uint64_t offset,
                                       absl::Span<uint8_t> out) const;
  [[nodiscard]] absl::Status WriteChain(const Chain& chain, uint64_t offset,
                                        absl::Span<const uint8_t> in) const;
  [[nodiscard]] absl::Status ForEachReadableSegment(
      const Chain& chain, uint64_t offset, uint64_t len,
      absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)> fn) const;
  [[nodiscard]] absl::Status ForEachWritableSegment(
      const Chain& chain, uint64_t offset, uint64_t len,
      absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)> fn) const;

  // Returns to the state right after Create: next avail index from the
  // config, used index as at Create, nothing in flight, notification state
  // forgotten, and the latch CLEARED (it may be shared: a device resets all
  // of its queues together). Chains popped before are forgotten; pushing
  // them afterwards fails. Touches no guest memory.
  void Reset();

  // Next avail index to consume (vhost-user GET_VRING_BASE).
  uint16_t last_avail_idx() const { return last_avail_; }
  // Next used index to publish.
  uint16_t used_idx() const { return used_idx_; }
  uint32_t size() const { return config_.size; }
  size_t in_flight() const { return in_flight_count_; }
  bool broken() const { return latch_->IsBroken(); }
  const BrokenLatch& latch() const { return *latch_; }
  const GuestMemory& memory() const { return memory_; }
  DeviceQueueStats stats() const;

 private:
  DeviceQueue(GuestMemory memory, const DeviceQueueConfig& config,
              std::shared_ptr<BrokenLatch> latch, uint8_t* desc, uint8_t* avail,
              uint8_t* used, uint16_t initial_used);

  void ResetState();
  // Latches |why| and returns it.
  absl::Status Violation(absl::Status why);
  // Loads avail.idx (acquire) and checks it claims <= size new entries.
  absl::StatusOr<uint16_t> LoadAvailIdx();
  absl::Status CheckCompletion(uint16_t head, uint32_t len) const;
  void WriteUsedElement(uint16_t head, uint32_t len);
  void PublishUsedIdx();

  const GuestMemory memory_;
  const DeviceQueueConfig config_;
  const std::shared_ptr<BrokenLatch> latch_;
  const uint16_t mask_;
  uint8_t* const desc_;
  uint8_t* const avail_;
  uint8_t* const used_;
  const uint16_t initial_used_;
  internal::ChainWalker walker_;

  uint16_t last_avail_;
  uint16_t shadow_avail_;  // avail.idx as last read
  uint16_t used_idx_;
  uint16_t signalled_used_;  // used_idx_ at the last ShouldNotify()
  uint16_t used_flags_ = 0;  // our private copy; we never read used.flags
  std::vector<bool> in_flight_;
  std::vector<uint32_t> in_flight_writable_;
  size_t in_flight_count_ = 0;
  DeviceQueueStats stats_;
};

}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_DEVICE_QUEUE_H_
