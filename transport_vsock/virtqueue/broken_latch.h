// File: transport_vsock/virtqueue/broken_latch.h
//
// BrokenLatch: the "device is broken / NEEDS_RESET" flag (HARDENING rows 3
// and 12). The first violation of the virtio contract by the peer (a
// malformed descriptor chain, a lying avail index, a bogus used id) latches
// it; from then on every queue sharing the latch fails fast with
// kFailedPrecondition and touches no shared memory, until the owner resets
// the device and clears the latch.
//
// A device owns one latch and shares it (std::shared_ptr) with all of its
// queues, so a violation on one queue stops them all, as QEMU's
// virtio_error() does. Clearing the latch is part of a device reset, which
// must also Reset() (or recreate) every queue sharing it.
//
// Thread-safe: Latch/IsBroken/status may be called from any thread.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_BROKEN_LATCH_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_BROKEN_LATCH_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace vrpc {
namespace virtqueue {

class BrokenLatch {
 public:
  BrokenLatch() = default;
  BrokenLatch(const BrokenLatch&) = delete;
  BrokenLatch& operator=(const BrokenLatch&) = delete;

  // Records a violation. The first one since the last Clear() is kept as the
  // reason; every call counts. |why| must not be OK (CHECKed).
  void Latch(absl::Status why);

  // True after Latch() until Clear(). Cheap (one atomic load).
  bool IsBroken() const { return broken_.load(std::memory_order_acquire); }

  // The first violation since the last Clear(), or OK when not broken.
  absl::Status status() const;

  // The error every call on a broken queue returns: kFailedPrecondition
  // carrying the original reason.
  absl::Status BrokenError() const;

  // Violations seen over the latch's lifetime (not reset by Clear()).
  uint64_t violation_count() const {
    return violations_.load(std::memory_order_relaxed);
  }

  // Un-breaks. Only as part of a device reset (see the file comment).
  void Clear();

 private:
  std::atomic<bool> broken_{false};
  std::atomic<uint64_t> violations_{0};
  mutable absl::Mutex mu_;
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_BROKEN_LATCH_H_
