// File: transport_vsock/driver/internal/session.h
//
// Session: the guest driver's three virtqueues for one bus session (from a
// device reset to the next), and the DMA memory they use:
//
//   rx (0)     min(rx_buffers, queue_size) writable buffers of 44 +
//              rx_buffer_size bytes, each starting on a page when it spans
//              one or more (a small packet then touches one page); a
//              received payload is handed on as a Slice into its buffer
//              (zero copy), and the buffer is posted again once the last
//              Slice is released, on any thread. When half the buffers are
//              held by the application, payloads are copied instead
//              (counted) so the device can always deliver control packets.
//   tx (1)     each packet is a chain: the 44-byte header from a private
//              slot, then the payload where it lies if it lies in the tx
//              pool (Connection::AllocateWriteBuffer), else copied into a
//              bounce block of the pool (counted). Payload Slices are held
//              until the device returns the chain.
//   event (2)  small writable buffers for struct virtio_vsock_event.
//
// The device is untrusted: DriverQueue validates every used entry and keeps
// private shadows; headers and event ids are read from device-writable
// memory exactly once (ReadOnceCopy) before use; lengths are checked against
// what was posted. The first violation latches the session broken: every
// call then fails with kFailedPrecondition without touching shared memory,
// and the owner resets the device.
//
// Not thread-safe: the driver's reactor thread calls everything; only the
// release hooks of Slices run on other threads (they hand buffers back
// through a mutex and a reactor Post).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_INTERNAL_SESSION_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_INTERNAL_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/driver/internal/tx_pool.h"
#include "transport_vsock/protocol/types.h"
#include "transport_vsock/virtqueue/broken_latch.h"
#include "transport_vsock/virtqueue/driver_queue.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace internal {

inline constexpr uint32_t kRxQueue = 0;
inline constexpr uint32_t kTxQueue = 1;
inline constexpr uint32_t kEventQueue = 2;
inline constexpr uint32_t kNumQueues = 3;

struct SessionConfig {
  uint32_t queue_size = 256;        // rx and tx rings (power of two)
  uint32_t event_queue_size = 8;    // event ring (power of two)
  uint32_t rx_buffer_size = 64 * 1024;  // payload bytes per rx buffer
  // rx buffers kept posted (at most queue_size are). The device fills them
  // in ring order, so every posted buffer's first page is touched soon: this
  // bounds the rx memory a session keeps resident.
  uint32_t rx_buffers = 64;
  size_t tx_pool_bytes = 8 << 20;
  bool event_idx = false;           // VIRTIO_F_EVENT_IDX negotiated
  uint32_t max_tx_segments = 16;    // payload Slices per chain before copying
};

struct SessionStats {
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_copied_bytes = 0;     // payloads copied under rx buffer pressure
  uint64_t tx_copied_bytes = 0;     // payloads copied into bounce blocks
  uint64_t tx_zero_copy_bytes = 0;  // payloads sent from where they lay
  uint64_t malformed_rx = 0;        // rx buffers too short for a header
  uint64_t events = 0;
  uint64_t kicks = 0;
};

class Session {
 public:
  // Receives one packet the device delivered. |copied|: payload bytes the
  // session had to copy.
  using RxSink = absl::FunctionRef<void(const Header& header, SliceChain payload,
                                        uint32_t copied)>;
  // Told the payload bytes copied on the way out for |header|'s packet.
  using TxCopySink = absl::FunctionRef<void(const Header& header, uint32_t copied)>;

  // Lays out the rings and buffers in DMA memory of |bus| (Reset and
  // negotiated already), sets up the three queues, posts the rx and event
  // buffers and starts the device. Does not take ownership of |bus| or
  // |reactor|; both must outlive the session. kInvalidArgument for a bad
  // config (sizes not powers of two, above the bus's maximum, rx buffers
  // above 64 KiB, no rx buffers); bus errors as they come.
  static absl::StatusOr<std::unique_ptr<Session>> Create(Bus& bus, io::Reactor& reactor,
                                                         const SessionConfig& config);
  // Buffers the application still holds stay mapped but are never posted
  // again.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- tx ----
  // Queues |packet| for FlushTx.
  void Queue(Packet packet);
  // Puts queued packets on the tx ring while descriptors and pool memory
  // last, publishes them and kicks if the device asks for it. Errors: the
  // session broke.
  absl::Status FlushTx(TxCopySink on_copied);
  // Harvests up to |budget| tx completions, releasing their payloads.
  // Returns how many; an error when the device broke a rule.
  absl::StatusOr<size_t> ReapTx(size_t budget);
  size_t pending_tx() const { return pending_.size(); }
  // Bytes the tx ring holds for the device (payload Slices and bounce
  // blocks), until ReapTx releases them.
  size_t tx_held_bytes() const { return tx_held_bytes_; }

  // ---- rx ----
  // Harvests up to |budget| received packets into |sink|. Returns how many
  // used buffers were consumed; an error when the device broke a rule.
  absl::StatusOr<size_t> ReapRx(size_t budget, RxSink sink);

  // ---- events ----
  // Harvests up to |budget| events (ids) into |sink|, reposting buffers.
  absl::StatusOr<size_t> ReapEvents(size_t budget, absl::FunctionRef<void(uint32_t id)> sink);

  // Interrupt suppression for queue |index| (see DriverQueue).
  absl::StatusOr<bool> EnableInterrupts(uint32_t index);
  absl::Status DisableInterrupts(uint32_t index);
  // Kicks every queue (once after start: the device may wait for one).
  void KickAll();

  // Transmit memory for the application (see TxPool).
  TxPool& tx_pool() { return *tx_pool_; }
  std::shared_ptr<TxPool> shared_tx_pool() const { return tx_pool_; }

  bool broken() const { return latch_->IsBroken(); }
  absl::Status broken_status() const { return latch_->status(); }
  const SessionStats& stats() const { return stats_; }
  // Rx buffers lent to the application right now.
  uint32_t rx_buffers_held() const { return rx_held_; }
  // One line of queue state, for diagnostics.
  std::string DebugString() const;

 private:
  struct RxBuffer {
    uint8_t* host = nullptr;
    uint64_t addr = 0;
  };
  struct TxSlot {
    SliceChain hold;  // payload Slices and the bounce block, until used
  };
  // Released rx buffers, handed back from any thread.
  struct Returns {
    std::mutex mu;
    std::vector<uint32_t> indices;  // guarded by mu
    Session* session = nullptr;     // guarded by mu; null once destroyed
  };
  // Recycle's and FlushTx's scratch vectors, kept for their capacity.
  std::vector<uint32_t> recycled_;
  std::vector<virtqueue::DriverBuffer> tx_bufs_;

  Session(Bus& bus, io::Reactor& reactor, const SessionConfig& config);
  absl::Status Layout();
  absl::Status PostRx(uint32_t index);
  absl::Status PublishRx();
  void Recycle();
  Slice LendRx(uint32_t index, uint32_t len);
  // Builds the chain for |p| into |bufs|/|hold|; false when the pool is
  // full (try later).
  bool BuildTx(Packet& p, std::vector<virtqueue::DriverBuffer>& bufs, SliceChain& hold,
               uint32_t* copied);
  void Kick(uint32_t index);

  Bus& bus_;
  io::Reactor& reactor_;
  const SessionConfig config_;
  const uint32_t rx_buffers_;  // posted: min(rx_buffers, queue_size)
  std::shared_ptr<virtqueue::BrokenLatch> latch_ = std::make_shared<virtqueue::BrokenLatch>();
  std::unique_ptr<virtqueue::DriverQueue> queues_[kNumQueues];
  DmaRegion layout_;  // rings, header slots, event and rx buffers
  std::shared_ptr<TxPool> tx_pool_;
  std::vector<RxBuffer> rx_;
  uint32_t rx_held_ = 0;
  std::vector<RxBuffer> event_;
  std::vector<TxSlot> tx_slots_;
  std::vector<uint32_t> free_tx_slots_;
  size_t tx_held_bytes_ = 0;
  std::vector<RxBuffer> tx_headers_;
  std::deque<Packet> pending_;
  std::shared_ptr<Returns> returns_ = std::make_shared<Returns>();
  SessionStats stats_;
};

}  // namespace internal
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_INTERNAL_SESSION_H_
