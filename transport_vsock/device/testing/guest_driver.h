// File: transport_vsock/device/testing/guest_driver.h
//
// GuestDriver: plays the guest's virtio-vsock driver over a BackendHarness's
// memfd guest RAM, so a test can drive a real VsockDevice attached to the
// harness's Backend without QEMU. It keeps DriverQueues (driver-role split
// rings) for rx (0), tx (1) and, with 3 rings, event (2) at
// BackendHarness::RingGuestAddr(i), carves buffers out of guest RAM, kicks
// through the harness's kick eventfds and harvests the used rings.
//
//   guest.Init(2);                              // before the rings start
//   VRPC_ASSERT_OK(StartVsockSession(harness, 2));
//   guest.PostRx(8, 4096);                      // rx buffers
//   guest.Send(GuestHeader(Op::kRequest, 1234, 5000), "");
//   reactor.RunUntilIdle();
//   auto packets = guest.TakeRx();              // e.g. the OP_RESPONSE
//
// Hostile cases write ring memory directly (Raw*), behind the DriverQueue's
// back; the driver's view of that ring is then meaningless until Init().
//
// Test-only. Not thread-safe. Does not own |harness|, which must outlive the
// driver. Environment errors CHECK-fail; what the device does wrong comes
// back as a Status (the DriverQueue validates every used entry).
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_TESTING_GUEST_DRIVER_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_TESTING_GUEST_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transport_vsock/vhost_user/testing/backend_harness.h"
#include "transport_vsock/virtqueue/driver_queue.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace testing {

inline constexpr uint32_t kRxRing = 0;
inline constexpr uint32_t kTxRing = 1;
inline constexpr uint32_t kEventRing = 2;

// The guest's CID in these tests (what the device is configured with).
inline constexpr uint64_t kDriverGuestCid = 3;

// A STREAM header from the guest (kDriverGuestCid:src_port) to the host
// (CID 2:dst_port) advertising |buf_alloc|; len is filled in by Send.
Header GuestHeader(Op op, uint32_t src_port, uint32_t dst_port,
                   uint32_t buf_alloc = 256 * 1024);

// One packet the device wrote into an rx buffer.
struct RxPacket {
  Header header;
  std::string payload;
};

// Plays QEMU's start-up of a vhost-user-vsock device with |rings| (2: QEMU
// keeps the event queue; 3: the backend gets it too): QemuInit (and
// call/err descriptors for ring 2), SET_MEM_TABLE, QemuStartRings and
// SET_VRING_ENABLE(1) for each ring, then Pump. Returns the first error.
absl::Status StartVsockSession(vhost_user::testing::BackendHarness& harness, uint32_t rings);

class GuestDriver {
 public:
  // Buffers come from guest RAM at [kBufferBase, ram size); they are never
  // reused (give the harness enough RAM).
  static constexpr uint64_t kBufferBase = 0x200000;

  explicit GuestDriver(vhost_user::testing::BackendHarness& harness);
  GuestDriver(const GuestDriver&) = delete;
  GuestDriver& operator=(const GuestDriver&) = delete;

  // (Re)creates rings 0..|rings|-1 (size kQemuRingSize, EVENT_IDX) and
  // zeroes them, as a driver does before DRIVER_OK. Call before the
  // frontend starts the rings. |rings| in 1..3 (CHECKed).
  void Init(uint32_t rings);

  // Whether Send/PostRx/PostEvents kick when the device asks for it
  // (default). Off: nothing is kicked unless Kick() is called.
  void set_auto_kick(bool on) { auto_kick_ = on; }
  // Signals ring |ring|'s kick eventfd.
  void Kick(uint32_t ring);

  // rx: posts |count| chains of one device-writable |size|-byte buffer.
  absl::Status PostRx(size_t count, uint32_t size);
  // Harvests the rx used ring. kDataLoss if a used length is under a header.
  absl::StatusOr<std::vector<RxPacket>> TakeRx();

  // tx: posts |header| (len set to payload.size()) + |payload| as one chain
  // split into device-readable descriptors of the sizes in |split|, the
  // rest in one more; empty |split| is Linux < 6.2's layout (header, then
  // payload). Each descriptor is a separate buffer. Returns the head.
  absl::StatusOr<uint16_t> Send(Header header, absl::string_view payload,
                                const std::vector<uint32_t>& split = {});
  // The same for arbitrary |bytes| (hostile headers, short chains).
  absl::StatusOr<uint16_t> SendBytes(absl::string_view bytes,
                                     const std::vector<uint32_t>& split = {});
  // The descriptors of the last chain Send/SendBytes posted.
  const std::vector<virtqueue::DriverBuffer>& last_tx() const { return last_tx_; }
  // Harvests the tx used ring: the heads the device gave back, in order.
  absl::StatusOr<std::vector<uint16_t>> TakeTxUsed();

  // event: posts |count| 4-byte event buffers; TakeEvents returns the ids
  // the device wrote (kDataLoss for a used length other than 4).
  absl::Status PostEvents(size_t count);
  absl::StatusOr<std::vector<uint32_t>> TakeEvents();

  // Hostile: raw ring writes in guest RAM, unvalidated.
  void RawSetDesc(uint32_t ring, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next);
  // avail.ring[avail.idx % size] = head, then avail.idx + 1.
  void RawPushAvail(uint32_t ring, uint16_t head);
  void RawSetAvailIdx(uint32_t ring, uint16_t idx);
  uint16_t RawAvailIdx(uint32_t ring) const;

  // A fresh guest buffer of |len| bytes (16-aligned, with a gap after it).
  uint64_t Allocate(uint32_t len);
  uint8_t* At(uint64_t guest_addr) const;
  virtqueue::DriverQueue& queue(uint32_t ring) { return *queues_.at(ring); }

 private:
  struct Buffer {
    uint64_t addr;
    uint32_t len;
  };
  absl::Status Publish(uint32_t ring);
  // Pops every used entry of |ring|.
  absl::StatusOr<std::vector<virtqueue::UsedBuffer>> Harvest(uint32_t ring);

  vhost_user::testing::BackendHarness& harness_;
  virtqueue::GuestMemory memory_;
  std::vector<std::unique_ptr<virtqueue::DriverQueue>> queues_;
  std::vector<Buffer> buffers_;  // by token, for rx and event buffers
  std::vector<virtqueue::DriverBuffer> last_tx_;
  uint64_t next_free_ = kBufferBase;
  bool auto_kick_ = true;
};

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_TESTING_GUEST_DRIVER_H_
