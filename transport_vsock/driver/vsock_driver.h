// File: transport_vsock/driver/vsock_driver.h
//
// VsockDriver: vrpc's userspace virtio-vsock guest driver. It runs the
// protocol engine in a VsockNode (local CID = the device's guest_cid, peer =
// the host, CID 2) and drives one virtio-vsock device through a Bus
// (virtio-user today; UIO/VFIO later):
//
//   core/transport  <- the node's in-process endpoints (node/inprocess.h)
//        |                        (endpoints.h)
//   VsockNode (engine) <-> VsockDriver <-> internal::Session (rx, tx, event
//        |                                  virtqueues in DMA memory)
//       Bus  ------ notifications: kicks, interrupt eventfds, control fds
//
// Bring-up (Create, and after every reset): Bus::Reset, features
// (VERSION_1, EVENT_IDX if wanted), read guest_cid (a reserved CID is a
// device error), lay out the queues, post rx and event buffers, DRIVER_OK.
//
// Device events and failures. VIRTIO_VSOCK_EVENT_TRANSPORT_RESET: every
// connection is reset (kClosed, UNAVAILABLE), guest_cid is read again,
// listeners stay. The device going away (virtio-user: the backend hung up)
// or breaking a rule (a used id that was not posted, a length beyond the
// buffer, a reserved CID): the session is torn down — connections get
// kClosed UNAVAILABLE, buffers still held by the application stay valid —
// and the driver brings the device up again, retrying with capped
// exponential backoff while it is unreachable. Meanwhile Connect() fails
// with kUnavailable; listeners stay. Nothing the device does can crash the
// driver.
//
// Notification modes: kInterrupt (sleep on the interrupt eventfds, EVENT_IDX
// suppression), kPoll (busy-poll the used rings every reactor turn: lowest
// latency, one core), kAdaptive (poll while traffic flows; after
// adaptive_spin empty polls re-arm interrupts and sleep).
//
// Threading: everything on the reactor's thread. Received payload Slices
// may be released on any thread. Connection handlers may destroy their
// connection, listener or connector, but not the VsockDriver (destroy it
// from a posted task instead).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_VSOCK_DRIVER_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_VSOCK_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/node/vsock_node.h"
#include "transport_vsock/protocol/engine.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {
namespace internal {
class Session;
class TxPool;
}  // namespace internal

enum class DriverNotifyMode { kInterrupt, kPoll, kAdaptive };

// Parses "interrupt", "poll" or "adaptive".
absl::StatusOr<DriverNotifyMode> ParseDriverNotifyMode(absl::string_view name);

struct VsockDriverOptions {
  uint32_t queue_size = 256;             // rx and tx rings
  uint32_t event_queue_size = 8;
  uint32_t rx_buffer_size = 64 * 1024;   // payload bytes per rx buffer
  // rx buffers kept posted (at most queue_size). Each one's first page is
  // touched as the device cycles through them: 64 keep about 256 KiB of
  // small-packet rx memory resident and still cover 4 MiB of payload.
  uint32_t rx_buffers = 64;
  size_t tx_pool_bytes = 8 << 20;        // AllocateWriteBuffer + bounces
  // Features wanted beyond VERSION_1 (always asked for).
  uint64_t features = kVirtioFeatureEventIdx;
  DriverNotifyMode notify_mode = DriverNotifyMode::kInterrupt;
  uint32_t adaptive_spin = 256;  // empty polls before sleeping
  uint32_t budget = 256;         // used buffers per queue per reactor turn
  // rx harvesting pauses while this many packets wait for tx descriptors.
  size_t max_pending_tx = 4096;
  absl::Duration reconnect_min = absl::Milliseconds(10);
  absl::Duration reconnect_max = absl::Seconds(1);
  // Engine tuning; local_cid and peer_cid are filled in, and
  // credit_update_on_drain is on unless notify_mode is kPoll.
  EngineConfig engine;
};

struct VsockDriverStats {
  uint64_t bring_ups = 0;         // sessions started
  uint64_t failed_bring_ups = 0;
  uint64_t device_losses = 0;     // sessions torn down (gone or violation)
  uint64_t violations = 0;        // of those, the device broke a rule
  uint64_t transport_resets = 0;  // TRANSPORT_RESET events
  uint64_t interrupts = 0;
  uint64_t polls = 0;
  // Totals over all sessions.
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_copied_bytes = 0;
  uint64_t tx_copied_bytes = 0;
  uint64_t tx_zero_copy_bytes = 0;
  uint64_t kicks = 0;
  // Gauges of the current session (0 while down): tx pool bytes allocated
  // (application write buffers and bounces), and of those the bytes the tx
  // ring holds until the device has read them.
  size_t tx_pool_in_use = 0;
  size_t tx_held_bytes = 0;
};

class VsockDriver final : private PacketSink, private EndpointHooks {
 public:
  // Takes ownership of |bus|; does not take ownership of |reactor|, which
  // must outlive the driver. Brings the device up synchronously (on the
  // calling thread, before the reactor runs, or on its thread) and returns
  // that error if it fails (e.g. kUnavailable: no backend at the socket).
  static absl::StatusOr<std::unique_ptr<VsockDriver>> Create(std::unique_ptr<Bus> bus,
                                                             io::Reactor& reactor,
                                                             const VsockDriverOptions& options);
  // Resets the device session; endpoints still alive see the driver gone
  // (state kClosed, calls fail with kUnavailable; no events).
  ~VsockDriver() override;
  VsockDriver(const VsockDriver&) = delete;
  VsockDriver& operator=(const VsockDriver&) = delete;

  // Takes host connections to guest |port| (kStream). kAlreadyExists if
  // something listens there. The listener must be destroyed on the reactor
  // thread; it may outlive the driver (then it accepts nothing).
  absl::StatusOr<std::unique_ptr<transport::Listener>> Listen(uint32_t port,
                                                              size_t backlog = 128);
  // Opens connections to |cid|:|port|; the host (CID 2) is the only peer a
  // virtio-vsock guest has: kInvalidArgument for any other CID.
  absl::StatusOr<std::unique_ptr<transport::Connector>> ConnectorTo(uint64_t cid,
                                                                    uint32_t port);

  // True while a device session runs.
  bool up() const { return session_ != nullptr; }
  uint64_t guest_cid() const { return guest_cid_; }
  io::Reactor& reactor() { return reactor_; }
  // The engine's node (endpoints of other kinds can be built on it).
  VsockNode& node() { return *node_; }
  Bus& bus() { return *bus_; }
  // Live counters, including the current session's.
  VsockDriverStats stats() const;
  // One line of state (session queues), for diagnostics.
  std::string DebugString() const;

 private:
  VsockDriver(std::unique_ptr<Bus> bus, io::Reactor& reactor, const VsockDriverOptions& options);

  // Session lifecycle.
  absl::Status BringUp();
  void WatchSession();
  void Fail(absl::Status why);
  void TearDown();
  void ScheduleReconnect();
  void Reconnect();

  // Queue servicing. Each Service* harvests up to |budget| used buffers.
  enum class Progress { kDrained, kMore, kPaused };
  void OnInterrupt(uint32_t index, int fd);
  void OnControl();
  void Service(uint32_t index);
  Progress ServiceQueue(uint32_t index);
  Progress ServiceRx();
  Progress ServiceTx();
  Progress ServiceEvents();
  void StartPolling();
  void PollOnce();
  void OnTransportReset();

  // PacketSink: the engine's packets, onto the tx ring.
  void SendToPeer(std::vector<Packet>& packets) override;
  // EndpointHooks: tx pool buffers (write_buffer_allocator for any thread,
  // through |pool_slot_|); connects only while the device is up.
  absl::Status CanConnect() override;
  Slice AllocateWriteBuffer(size_t size, uint8_t** data) override;
  transport::WriteBufferAllocator write_buffer_allocator() override;
  void SetPoolSlot(std::shared_ptr<internal::TxPool> pool);
  void PostToSelf(void (*fn)(VsockDriver&));
  void CollectStats();

  const VsockDriverOptions options_;
  std::unique_ptr<Bus> bus_;
  io::Reactor& reactor_;
  std::unique_ptr<VsockNode> node_;
  std::unique_ptr<internal::Session> session_;
  // The current session's tx pool, for allocators on other threads (null
  // while down).
  struct PoolSlot {
    std::mutex mu;
    std::shared_ptr<internal::TxPool> pool;
  };
  std::shared_ptr<PoolSlot> pool_slot_ = std::make_shared<PoolSlot>();
  uint64_t guest_cid_ = 0;
  uint64_t negotiated_ = 0;
  std::vector<io::WatchId> watches_;
  bool teardown_posted_ = false;
  absl::Status failure_;  // why the current session must end
  bool polling_ = false;
  bool rx_paused_ = false;
  io::ScopedPoller poller_;  // registered while polling_
  bool continue_posted_[3] = {false, false, false};
  uint32_t idle_polls_ = 0;
  io::TimerId reconnect_timer_ = 0;
  absl::Duration backoff_;
  absl::Time session_started_at_ = absl::InfinitePast();
  absl::Time session_lost_at_ = absl::InfinitePast();
  VsockDriverStats stats_;  // totals of ended sessions + driver counters
  // What endpoints and posted tasks hold: points at this driver until it
  // dies.
  std::shared_ptr<VsockDriver*> self_ = std::make_shared<VsockDriver*>(this);
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_VSOCK_DRIVER_H_
