// File: transport_vsock/driver/testing/hostile_device.h
//
// HostileDevice: a virtio-vsock device (vhost_user::DeviceHooks, driven
// through a DirectBus) that a test or fuzzer plays by hand, well or badly:
// it pops the driver's tx chains, writes whatever packets it likes into rx
// buffers, posts events, changes its config (guest_cid), writes used-ring
// entries behind its own queue's back (ids never posted, lengths beyond the
// buffer), and raises interrupts. Its queues are DeviceQueues over the
// driver's DMA memory, so well-behaved steps are real device steps.
//
// Test-only; not thread-safe. Calls return false when the step could not
// be taken (no ring, no buffer): the fuzzer just moves on.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_HOSTILE_DEVICE_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_HOSTILE_DEVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/virtqueue/device_queue.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace testing {

class HostileDevice final : public vhost_user::DeviceHooks {
 public:
  explicit HostileDevice(uint64_t guest_cid = 3);

  // ---- DeviceHooks ----
  uint64_t Features() const override { return features_; }
  uint32_t NumQueues() const override { return 3; }
  uint32_t ConfigSize() const override { return 8; }
  absl::StatusOr<std::vector<uint8_t>> ReadConfig(uint32_t offset, uint32_t size) override;
  void OnRingStarted(const vhost_user::RingConfig& ring,
                     std::shared_ptr<const vhost_user::MemoryTable> memory) override;
  uint16_t OnRingStopped(uint32_t index) override;
  void OnReset() override;

  // ---- What the test plays ----
  void set_features(uint64_t features) { features_ = features; }
  // The guest_cid config field (any value: reserved ones included).
  void set_config_cid(uint64_t cid) { config_cid_ = cid; }
  bool running() const { return queues_[1] != nullptr; }

  // Pops every tx chain the driver made available, remembers their headers
  // (tx_headers()), answers each OP_REQUEST with OP_RESPONSE (|respond|),
  // and completes each chain with used length |used_len| (0 is right).
  int DrainTx(bool respond = true, uint32_t used_len = 0);
  const std::vector<Header>& tx_headers() const { return tx_headers_; }

  // Writes |h| (len taken as is) and |payload| into the next rx buffer and
  // completes it with |used_len| (default: the bytes written, capped at the
  // buffer). False when no rx buffer is available.
  bool DeliverRx(const Header& h, const std::string& payload,
                 std::optional<uint32_t> used_len = std::nullopt);
  // An event of |len| bytes with |id| into the next event buffer.
  bool PostEvent(uint32_t id, uint32_t len = 4);
  // A used entry {id, len} on ring |ring| written behind the queue's back,
  // and used.idx advanced by |advance|.
  bool RawUsed(uint32_t ring, uint32_t id, uint32_t len, uint16_t advance = 1);
  // Signals ring |ring|'s interrupt (call) eventfd.
  void Interrupt(uint32_t ring);

  // A STREAM header from the host to the guest (CID 2 -> guest_cid).
  Header ToGuest(Op op, uint32_t src_port, uint32_t dst_port, uint32_t len = 0) const;

 private:
  void Notify(uint32_t ring);

  uint64_t features_;
  uint64_t config_cid_;
  vhost_user::RingConfig rings_[3];
  std::unique_ptr<virtqueue::DeviceQueue> queues_[3];
  std::shared_ptr<const vhost_user::MemoryTable> memory_;
  std::vector<Header> tx_headers_;
};

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_HOSTILE_DEVICE_H_
