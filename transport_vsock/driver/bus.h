// File: transport_vsock/driver/bus.h
//
// Bus: how the guest driver reaches one virtio device, whatever carries it —
// a vhost-user socket with no VM at all (virtio-user, virtio_user_bus.h), a
// PCI function through UIO or VFIO (later), or a device in the same process
// (tests). It is the virtio initialization sequence (VIRTIO 1.2 §3.1.1), cut
// down to what a split-ring driver needs:
//
//   Reset()                      device reset; a fresh session
//   NegotiateFeatures(wanted)    ACKNOWLEDGE | DRIVER, features, FEATURES_OK
//   ReadConfig(offset, out)      device-specific config (vsock: le64 guest_cid)
//   AllocateDma(size)            memory the device can read and write
//   SetupQueue(index, layout)    ring size and addresses, notifications
//   Start()                      DRIVER_OK: queues live
//   Notify(index)                "kick": buffers were made available
//   InterruptFd(index)           readable when the device used buffers
//   control_fds()/HandleControl  the device went away or changed
//
// Sessions. Everything set up belongs to the current session, which Reset()
// ends. DMA memory of an ended session stays mapped in this process while
// anything holds its keepalive (received payload Slices do), but the device
// no longer sees it and it is never handed out again.
//
// Trust: the device behind a bus is untrusted. The bus checks what it parses
// (vhost-user replies) and reports a misbehaving or vanished device as an
// error Status from HandleControl() or from the setup call; the driver then
// resets the session. Nothing here CHECKs on device input.
//
// Threading: not thread-safe; the driver's reactor thread calls everything.
// Setup calls may block for a bounded time (a bus-specific timeout).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_BUS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_BUS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace vsock {

// Virtio feature bits the driver may negotiate (VIRTIO 1.2 §6, §5.10.3).
inline constexpr uint64_t kVirtioFeatureIndirectDesc = uint64_t{1} << 28;
inline constexpr uint64_t kVirtioFeatureEventIdx = uint64_t{1} << 29;
inline constexpr uint64_t kVirtioFeatureVersion1 = uint64_t{1} << 32;
inline constexpr uint64_t kVirtioFeatureInOrder = uint64_t{1} << 35;
inline constexpr uint64_t kVsockFeatureStream = uint64_t{1} << 0;
inline constexpr uint64_t kVsockFeatureSeqpacket = uint64_t{1} << 1;

// A block of DMA memory: |host| in this process, |device_addr| as the device
// addresses it (what goes into descriptors and ring addresses).
struct DmaRegion {
  uint8_t* host = nullptr;
  uint64_t device_addr = 0;
  size_t size = 0;
  // Keeps the mapping alive (share it with anything pointing into it).
  std::shared_ptr<const void> keepalive;
};

// Where one split virtqueue lives, in device addresses.
struct QueueLayout {
  uint32_t size = 0;  // power of two, <= Bus::MaxQueueSize
  uint64_t desc_addr = 0;
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
};

class Bus {
 public:
  virtual ~Bus() = default;

  // Human-readable, e.g. "virtio-user:/run/vm.vsock".
  virtual std::string name() const = 0;

  // Ends the current session (if any) and begins a new one: the device is
  // reset and, for virtio-user, the socket reconnected. kUnavailable when
  // the device is not reachable now (the caller retries later); other
  // codes for a device that misbehaved during the exchange.
  [[nodiscard]] virtual absl::Status Reset() = 0;

  // Acks the features in |wanted| that the device offers; returns them.
  // kFailedPrecondition if VIRTIO_F_VERSION_1 is not among them (no legacy
  // devices), or if the device refuses.
  [[nodiscard]] virtual absl::StatusOr<uint64_t> NegotiateFeatures(uint64_t wanted) = 0;

  // Reads |out.size()| bytes of device config space at |offset|. The bytes
  // are the device's word: validate them.
  [[nodiscard]] virtual absl::Status ReadConfig(uint32_t offset, absl::Span<uint8_t> out) = 0;

  // |size| bytes (rounded up to 4 KiB) of zeroed memory the device can
  // access, for this session. kResourceExhausted when the bus has no more.
  [[nodiscard]] virtual absl::StatusOr<DmaRegion> AllocateDma(size_t size) = 0;

  // Every DMA region of this session, as device address -> host pointer
  // (what the driver's queues translate through). Its keepalive holds all of
  // them.
  virtual virtqueue::GuestMemory DmaMemory() const = 0;

  // Largest ring the device takes for queue |index|.
  virtual uint32_t MaxQueueSize(uint32_t index) const = 0;

  // Gives queue |index| to the device (its memory must come from
  // AllocateDma and be initialized by the driver). Interrupts for it appear
  // on InterruptFd(index) from now on.
  [[nodiscard]] virtual absl::Status SetupQueue(uint32_t index, const QueueLayout& layout) = 0;

  // The device may start using the queues set up (DRIVER_OK).
  [[nodiscard]] virtual absl::Status Start() = 0;

  // Tells the device that queue |index| has new available buffers. Never
  // fails: a dead device shows up on the control fds.
  virtual void Notify(uint32_t index) = 0;

  // An eventfd-like descriptor (owned by the bus, valid for the session)
  // that becomes readable when the device used buffers of queue |index| and
  // asked to interrupt; the driver drains it with read(2). -1 when the bus
  // has none (poll the ring).
  virtual int InterruptFd(uint32_t index) const = 0;

  // Descriptors (owned by the bus, valid for the session) that become
  // readable when something happens to the device: it hung up, signalled an
  // error, or changed its config. Then call HandleControl().
  virtual std::vector<int> control_fds() const = 0;

  // Looks at what the control fds reported. OK: nothing that needs the
  // driver (spurious wake-up). kUnavailable: the device went away; other
  // codes: it failed or misbehaved. Either error means: reset the session.
  [[nodiscard]] virtual absl::Status HandleControl() = 0;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_BUS_H_
