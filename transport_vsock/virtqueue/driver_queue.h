// File: transport_vsock/virtqueue/driver_queue.h
//
// DriverQueue: the driver side of one split virtqueue (the guest's userspace
// driver, the virtio-user frontend, and tests that drive a DeviceQueue). The
// ring lives in memory the driver owns and shares with the device, described
// by a GuestMemory (the addresses the device sees) — e.g. one memfd region.
//
// Trust model: the device is untrusted too (a confidential guest must not
// trust its host; a buggy device must not corrupt the driver). Therefore
//   - the driver keeps PRIVATE SHADOW state for every descriptor it posted
//     (free list, chain lengths, writable bytes, tokens) and never reads the
//     descriptor table or the avail ring back (HARDENING row 7, the
//     MigTD / Linux "private copy of the descriptors" rule);
//   - every used entry is validated before use: used.idx may not claim more
//     completions than chains published and not yet harvested, the id must
//     be < size and the head of a published, outstanding chain, and the
//     length must not exceed the writable bytes posted (rows 2, 5, 14);
//   - the first violation latches the BrokenLatch; afterwards every call
//     fails with kFailedPrecondition and touches no shared memory.
//
// Typical use:
//   VRPC_ASSIGN_OR_RETURN(uint16_t head, q.Add(readable, writable, token));
//   VRPC_ASSIGN_OR_RETURN(bool kick, q.PublishAvail());
//   if (kick) notifier.Kick();
//   ... later ...
//   VRPC_ASSIGN_OR_RETURN(std::optional<UsedBuffer> used, q.PopUsed());
//
// Thread-safety: not thread-safe; one thread drives a queue.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_DRIVER_QUEUE_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_DRIVER_QUEUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "transport_vsock/virtqueue/broken_latch.h"
#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace virtqueue {

struct DriverQueueConfig {
  uint32_t size = 0;  // power of two in [1, 32768]
  uint64_t desc_addr = 0;   // device-visible addresses of the three parts
  uint64_t avail_addr = 0;  // (alignment 16 / 2 / 4)
  uint64_t used_addr = 0;
  bool event_idx = false;  // VIRTIO_F_EVENT_IDX negotiated
};

// One buffer to post: device-visible address and length (> 0).
struct DriverBuffer {
  uint64_t addr = 0;
  uint32_t len = 0;
};

// A completed chain, validated.
struct UsedBuffer {
  uint16_t head = 0;
  uint32_t len = 0;     // bytes the device wrote, <= the writable bytes posted
  uint64_t token = 0;   // what Add() was given
};

class DriverQueue {
 public:
  // Validates |config| like DeviceQueue::Create (size, alignment, each part
  // mapped inside one region of |memory|) and ZEROES the three parts (the
  // driver initializes its ring before DRIVER_OK). |latch| may be shared;
  // null makes a private one. Returns kInvalidArgument / kOutOfRange.
  static absl::StatusOr<std::unique_ptr<DriverQueue>> Create(
      GuestMemory memory, const DriverQueueConfig& config,
      std::shared_ptr<BrokenLatch> latch = nullptr);

  DriverQueue(const DriverQueue&) = delete;
  DriverQueue& operator=(const DriverQueue&) = delete;

  // Posts one chain: |readable| (device reads) then |writable| (device
  // writes) buffers, and queues its head on the avail ring (not yet visible:
  // see PublishAvail). |token| comes back with the completion. Returns the
  // head. Errors: kInvalidArgument when there is no buffer, a buffer has
  // len 0 or is not mapped in the queue's memory, or the total exceeds
  // 2^32 - 1; kResourceExhausted when fewer descriptors are free than
  // buffers given; kFailedPrecondition when broken.
  [[nodiscard]] absl::StatusOr<uint16_t> Add(absl::Span<const DriverBuffer> readable,
                                             absl::Span<const DriverBuffer> writable,
                                             uint64_t token);

  // Publishes every chain added since the last call (release store of
  // avail.idx), then decides whether the device must be kicked: with
  // EVENT_IDX whether avail.idx crossed used.avail_event, otherwise whether
  // used.flags lacks NO_NOTIFY. False when nothing new was published.
  // kFailedPrecondition when broken.
  [[nodiscard]] absl::StatusOr<bool> PublishAvail();

  // Harvests the next used entry, validated (see the file comment): nullopt
  // when there is none. On a device violation latches and returns it
  // (kInvalidArgument); kFailedPrecondition when already broken.
  [[nodiscard]] absl::StatusOr<std::optional<UsedBuffer>> PopUsed();

  // Asks for interrupts (EVENT_IDX: avail.used_event = next used index to
  // harvest; otherwise clears avail.flags NO_INTERRUPT), then re-reads
  // used.idx: true when completions are already pending. Errors as PopUsed.
  [[nodiscard]] absl::StatusOr<bool> EnableInterrupts();

  // Asks for no interrupts (sets avail.flags NO_INTERRUPT; with EVENT_IDX
  // writes nothing, used_event stays behind).
  [[nodiscard]] absl::Status DisableInterrupts();

  uint32_t size() const { return config_.size; }
  // Descriptors not posted.
  uint32_t free_descriptors() const { return num_free_; }
  // Chains added and not yet harvested (published or not).
  uint32_t outstanding() const { return outstanding_; }
  // avail.idx as last published.
  uint16_t published_avail_idx() const { return published_avail_; }
  // Next used index to harvest.
  uint16_t last_used_idx() const { return last_used_; }
  bool broken() const { return latch_->IsBroken(); }
  const BrokenLatch& latch() const { return *latch_; }
  const DriverQueueConfig& config() const { return config_; }

 private:
  enum class HeadState : uint8_t { kFree, kAdded, kPublished };
  struct HeadInfo {
    HeadState state = HeadState::kFree;
    uint16_t descriptors = 0;
    uint32_t writable_bytes = 0;
    uint64_t token = 0;
  };

  DriverQueue(GuestMemory memory, const DriverQueueConfig& config,
              std::shared_ptr<BrokenLatch> latch, uint8_t* desc, uint8_t* avail,
              uint8_t* used);

  absl::Status Violation(absl::Status why);
  absl::Status CheckBuffers(absl::Span<const DriverBuffer> readable,
                            absl::Span<const DriverBuffer> writable,
                            uint32_t* writable_bytes) const;
  void WriteDesc(uint16_t index, const DriverBuffer& b, uint16_t flags, uint16_t next);
  // Loads used.idx (acquire) and checks it claims no more completions than
  // published chains not yet harvested.
  absl::StatusOr<uint16_t> LoadUsedIdx();
  void FreeChain(uint16_t head, uint16_t count);

  const GuestMemory memory_;
  const DriverQueueConfig config_;
  const std::shared_ptr<BrokenLatch> latch_;
  const uint16_t mask_;
  uint8_t* const desc_;
  uint8_t* const avail_;
  uint8_t* const used_;

  // Private shadow state; the device cannot touch any of it.
  std::vector<uint16_t> next_free_;   // free list links, and chain links
  uint16_t free_head_ = 0;
  uint32_t num_free_ = 0;
  std::vector<HeadInfo> heads_;
  std::vector<uint16_t> avail_shadow_;  // heads by avail slot
  uint16_t avail_idx_ = 0;        // next avail slot to fill
  uint16_t published_avail_ = 0;  // avail.idx as published
  uint16_t last_used_ = 0;        // next used entry to harvest
  uint16_t shadow_used_ = 0;      // used.idx as last read
  uint16_t avail_flags_ = 0;
  uint32_t outstanding_ = 0;
};

}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_DRIVER_QUEUE_H_
