// File: transport_vsock/driver/virtio_user_bus.h
//
// VirtioUserBus: the guest driver's Bus over a vhost-user socket, with no VM
// (DPDK's "virtio-user"). The driver process is the vhost-user frontend, as
// QEMU would be: its DMA memory is a memfd shared with the backend through
// SET_MEM_TABLE, kicks and interrupts are eventfds handed over with
// SET_VRING_KICK / SET_VRING_CALL, and the device config is read with
// GET_CONFIG. The backend (vrpc's host_agent, or any vhost-user-vsock
// backend) serves the device.
//
// Each Reset() is a new session: the socket is (re)connected, QEMU 7.2's
// handshake runs (FACTS.md §0: GET_FEATURES, GET_PROTOCOL_FEATURES,
// SET_PROTOCOL_FEATURES(MQ|REPLY_ACK|CONFIG as offered), GET_QUEUE_NUM,
// SET_OWNER; SET_FEATURES in NegotiateFeatures; GET_CONFIG in ReadConfig;
// SET_MEM_TABLE with the first SetupQueue; per ring SET_VRING_CALL/ERR/NUM/
// BASE/ADDR/KICK; SET_VRING_ENABLE in Start()), and a fresh memfd backs the
// session's DMA memory. Differences from QEMU: the config is read after
// SET_FEATURES (the virtio driver's order), CALL/ERR are sent once per ring
// just before it is set up, and with REPLY_ACK every request without a
// reply of its own asks for an acknowledgement (QEMU asks for
// SET_MEM_TABLE's), so a refusal fails the step that caused it.
//
// The event queue (2) stays with the frontend by default, as QEMU keeps it:
// the backend gets rings 0 and 1 only. A vhost-user session cannot reset
// under the driver without the socket going away (which the driver sees),
// so the backend has nothing to announce; and a backend that owns the event
// ring (vrpc's device does, as crosvm's) posts TRANSPORT_RESET at the start
// of every session but its first, racing the first connections of a driver
// that reconnected to it. Set event_queue_to_backend to hand it over anyway. Device addresses are offsets from kDmaBase, so descriptors never
// reveal this process's address space; vring addresses in SET_VRING_ADDR
// are, as vhost-user requires, our virtual addresses.
//
// The backend is untrusted: every reply is checked (vhost_user::Frontend);
// a hang-up or an unexpected message on the socket, or a signal on the
// error eventfd (the backend's SET_VRING_ERR), is reported by
// HandleControl() and ends the session.
//
// Not thread-safe (Bus). Setup calls block for at most io_timeout per
// message.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_VIRTIO_USER_BUS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_VIRTIO_USER_BUS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/vhost_user/frontend.h"

namespace vrpc {
namespace vsock {

struct VirtioUserBusOptions {
  std::string socket_path;
  // DMA memory per session (one memfd; pages are allocated when touched).
  size_t dma_bytes = 64 << 20;
  absl::Duration io_timeout = absl::Seconds(2);
  // Largest ring offered to the driver (QEMU's VIRTQUEUE_MAX_SIZE).
  uint32_t max_queue_size = 1024;
  // Queues the driver sets up (virtio-vsock: rx, tx, event).
  uint32_t num_queues = 3;
  // Give the last queue (the event queue) to the backend too (see above).
  bool event_queue_to_backend = false;
};

class VirtioUserBus final : public Bus {
 public:
  // The device address of the first byte of DMA memory.
  static constexpr uint64_t kDmaBase = uint64_t{1} << 32;

  // Checks the options (the path must fit a Unix socket address); does not
  // connect yet (Reset does). kInvalidArgument otherwise.
  static absl::StatusOr<std::unique_ptr<VirtioUserBus>> Create(VirtioUserBusOptions options);
  ~VirtioUserBus() override;

  std::string name() const override;
  absl::Status Reset() override;
  absl::StatusOr<uint64_t> NegotiateFeatures(uint64_t wanted) override;
  absl::Status ReadConfig(uint32_t offset, absl::Span<uint8_t> out) override;
  absl::StatusOr<DmaRegion> AllocateDma(size_t size) override;
  virtqueue::GuestMemory DmaMemory() const override;
  uint32_t MaxQueueSize(uint32_t index) const override { return options_.max_queue_size; }
  absl::Status SetupQueue(uint32_t index, const QueueLayout& layout) override;
  absl::Status Start() override;
  void Notify(uint32_t index) override;
  int InterruptFd(uint32_t index) const override;
  std::vector<int> control_fds() const override;
  absl::Status HandleControl() override;

  // The features the backend offered in this session (tests).
  uint64_t offered_features() const;

 private:
  struct Session;
  explicit VirtioUserBus(VirtioUserBusOptions options);
  absl::StatusOr<std::unique_ptr<Session>> Connect() const;
  absl::Status Handshake(Session& s) const;
  absl::Status SendMemTable(Session& s) const;
  absl::Status Check() const;
  // Queues the backend serves.
  uint32_t backend_queues() const;

  const VirtioUserBusOptions options_;
  std::unique_ptr<Session> session_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_VIRTIO_USER_BUS_H_
