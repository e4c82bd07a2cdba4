// File: transport_vsock/device/vsock_device.h
//
// VsockDevice: the virtio-vsock device of one VM, as a vhost-user backend's
// device (QEMU's vhost-user-vsock-pci attaches to it). It joins three layers:
//
//   vhost_user::Backend --DeviceHooks--> VsockDevice --> virtqueue::DeviceQueue
//                                            |             (rx 0, tx 1, event 2)
//                                            +--> VsockHost (engine + endpoints)
//
// tx (guest -> host): each chain is a 44-byte header plus payload, split over
// descriptors however the guest likes (Linux 6.2+ puts both in one). The
// header is copied out once; the payload is handed to the engine as Slices
// pointing into guest memory (zero copy) and the chain goes back to the used
// ring when the last Slice is released. A payload shorter than copy_below
// is copied out instead and its chain goes back at once: for an RPC's small
// frames the copy costs far less than tracking the chain's release (and the
// engine copies payloads that small anyway). If half the ring is held,
// payloads are copied too, so host applications that sit on data cannot
// starve the guest's tx ring. Copies count in stats().copied_bytes.
// rx (host -> guest): engine packets are written into the guest's rx
// buffers; a payload larger than the buffer is split into several RW
// packets (Linux guests post 4 KiB buffers), EOM/EOR only on the last.
//
// Hostile guest: ring violations latch the device broken (no guest memory
// is touched until the frontend resets it; the err eventfd is signalled);
// packet-level violations cost the guest an RST (the engine's rules). Work
// per kick is bounded (tx_budget), and tx processing pauses while too many
// packets wait for rx buffers (max_pending_rx), so a guest that never posts
// rx buffers cannot make the host buffer without bound.
//
// Threading: all calls on the reactor thread (the Backend's thread). Payload
// Slices may be released on any thread.
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_DEVICE_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/io/reactor.h"
#include "transport_vsock/device/vsock_host.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/virtqueue/broken_latch.h"
#include "transport_vsock/virtqueue/device_queue.h"

namespace vrpc {
namespace vsock {

// How the device learns that the guest posted buffers.
enum class RingNotifyMode {
  kInterrupt,  // kick eventfds (EVENT_IDX suppression); no CPU when idle
  kPoll,       // busy-poll the tx and rx rings on the reactor; no kicks
  kAdaptive,   // poll while there is traffic; after adaptive_idle_polls
               // empty polls, re-arm kicks and sleep until the next one
};

// Parses "interrupt", "poll" or "adaptive".
absl::StatusOr<RingNotifyMode> ParseRingNotifyMode(absl::string_view name);

struct VsockDeviceOptions {
  // host.engine.credit_update_on_drain is set: on unless notify_mode is kPoll.
  VsockHostOptions host;
  RingNotifyMode notify_mode = RingNotifyMode::kInterrupt;
  uint32_t adaptive_idle_polls = 256;
  // tx chains handled per kick before yielding to other work.
  uint32_t tx_budget = 256;
  // Engine packets allowed to wait for guest rx buffers before tx pauses.
  size_t max_pending_rx = 4096;
  // tx payloads shorter than this are copied and their chain completed at
  // once; longer ones are handed over in place (zero copy).
  uint32_t copy_below = 512;
};

struct VsockDeviceStats {
  uint64_t tx_packets = 0;
  uint64_t rx_packets = 0;        // packets written to the guest (after splits)
  uint64_t malformed_chains = 0;  // tx chains too short for a header
  uint64_t copied_bytes = 0;      // tx payload bytes copied (small, or ring pressure)
  uint64_t zero_copy_bytes = 0;   // tx payload bytes handed over in place
  uint64_t transport_resets_sent = 0;
  uint64_t polls = 0;  // ring polls in kPoll / kAdaptive mode
};

class VsockDevice final : public vhost_user::DeviceHooks, private PacketSink {
 public:
  // Does not take ownership of |reactor|, which must outlive the device.
  // Errors as VsockHost::Create.
  static absl::StatusOr<std::unique_ptr<VsockDevice>> Create(const VsockDeviceOptions& options,
                                                             io::Reactor& reactor);
  ~VsockDevice() override;
  VsockDevice(const VsockDevice&) = delete;
  VsockDevice& operator=(const VsockDevice&) = delete;

  // ---- vhost_user::DeviceHooks ----
  uint64_t Features() const override;
  uint32_t NumQueues() const override { return 3; }
  uint32_t ConfigSize() const override { return 8; }
  absl::StatusOr<std::vector<uint8_t>> ReadConfig(uint32_t offset, uint32_t size) override;
  void OnRingStarted(const vhost_user::RingConfig& ring,
                     std::shared_ptr<const vhost_user::MemoryTable> memory) override;
  void OnRingUpdated(const vhost_user::RingConfig& ring) override;
  uint16_t OnRingStopped(uint32_t index) override;
  void OnReset() override;

  VsockHost& host() { return *host_; }
  bool broken() const { return latch_->IsBroken(); }
  const VsockDeviceStats& stats() const { return stats_; }
  // Ring and queue state, for diagnostics.
  std::string DebugString() const;

 private:
  static constexpr uint32_t kRx = 0;
  static constexpr uint32_t kTx = 1;
  static constexpr uint32_t kEvent = 2;

  struct Ring {
    std::unique_ptr<virtqueue::DeviceQueue> queue;
    vhost_user::SharedFd kick;
    vhost_user::SharedFd call;
    vhost_user::SharedFd err;
    io::WatchId kick_watch = 0;
    bool enabled = false;
    uint64_t generation = 0;  // tells completions of an old ring apart
  };
  class TxCompletion;

  VsockDevice(const VsockDeviceOptions& options, io::Reactor& reactor);

  // PacketSink: engine output for the guest.
  void SendToPeer(std::vector<Packet>& packets) override;

  void WatchKick(uint32_t index);
  void ProcessTx();
  void HandleTxChain(const virtqueue::Chain& chain);
  // Copies |take| payload bytes of a tx chain into |payload| (counted in
  // copied_bytes); false if the ring broke meanwhile.
  bool CopyTxPayload(const virtqueue::Chain& chain, uint32_t take, SliceChain& payload);
  void ProcessRx();
  bool WriteRxPacket(const virtqueue::Chain& chain);
  void ProcessEvents();
  void CompleteTx(uint64_t generation, uint16_t head);
  void DrainCompletions();
  void Notify(uint32_t index);
  // Polling (kPoll / kAdaptive): a reactor poller while polling_.
  void StartPolling();
  void PollOnce();
  void StopPollingAndArm();
  // Runs |fn| on a later reactor turn if the device still exists.
  void PostToSelf(void (*fn)(VsockDevice&));
  void Violation(const absl::Status& why);
  bool Usable(uint32_t index) const;

  const VsockDeviceOptions options_;
  io::Reactor& reactor_;
  std::unique_ptr<VsockHost> host_;
  std::shared_ptr<virtqueue::BrokenLatch> latch_ = std::make_shared<virtqueue::BrokenLatch>();
  Ring rings_[3];
  uint64_t next_generation_ = 1;
  std::deque<Packet> pending_rx_;
  bool tx_paused_ = false;
  bool tx_continuation_posted_ = false;
  bool polling_ = false;
  io::ScopedPoller poller_;  // registered while polling_
  uint32_t idle_polls_ = 0;
  bool session_ran_ = false;          // this frontend session started tx
  bool earlier_session_ran_ = false;  // one that did has ended: announce resets
  bool reset_event_pending_ = false;
  VsockDeviceStats stats_;
  // Tx completions arrive here from whichever thread releases a payload;
  // shared with the completions so it outlives the device.
  struct CompletionQueue {
    std::mutex mu;
    std::vector<std::pair<uint64_t, uint16_t>> done;  // (generation, head)
    VsockDevice* device = nullptr;                     // null once destroyed
  };
  std::shared_ptr<CompletionQueue> completions_ = std::make_shared<CompletionQueue>();
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_DEVICE_H_
