// File: transport_vsock/driver/testing/direct_bus.h
//
// DirectBus: a Bus that drives a vhost_user::DeviceHooks (vrpc's VsockDevice,
// or a test's hostile device) in the same process and on the same thread,
// with no socket in between: what the vhost-user Backend would tell the
// device, the bus tells it directly. DMA memory is a memfd mapped twice (the
// driver's view and the device's MemoryTable), kicks and interrupts are real
// eventfds, so everything runs deterministically on one ManualReactor.
//
// Test controls: HangUp() makes the device "go away" (control fd readable,
// HandleControl() -> kUnavailable); set_reachable(false) makes Reset() fail
// with kUnavailable until set back. Test-only; environment errors
// CHECK-fail.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_DIRECT_BUS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_DIRECT_BUS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/memory.h"

namespace vrpc {
namespace vsock {
namespace testing {

class DirectBus final : public Bus {
 public:
  static constexpr uint64_t kDmaBase = uint64_t{1} << 32;

  // Does not take ownership of |device|, which must outlive the bus.
  explicit DirectBus(vhost_user::DeviceHooks* device, size_t dma_bytes = 48 << 20);
  ~DirectBus() override;

  std::string name() const override { return "direct"; }
  absl::Status Reset() override;
  absl::StatusOr<uint64_t> NegotiateFeatures(uint64_t wanted) override;
  absl::Status ReadConfig(uint32_t offset, absl::Span<uint8_t> out) override;
  absl::StatusOr<DmaRegion> AllocateDma(size_t size) override;
  virtqueue::GuestMemory DmaMemory() const override { return memory_; }
  uint32_t MaxQueueSize(uint32_t index) const override { return 1024; }
  absl::Status SetupQueue(uint32_t index, const QueueLayout& layout) override;
  absl::Status Start() override;
  void Notify(uint32_t index) override;
  int InterruptFd(uint32_t index) const override;
  std::vector<int> control_fds() const override;
  absl::Status HandleControl() override;

  // The device hangs up (the driver sees it on its next reactor turn).
  void HangUp();
  // While false, Reset() fails with kUnavailable.
  void set_reachable(bool reachable) { reachable_ = reachable; }
  // Sessions begun (successful Resets).
  int sessions() const { return sessions_; }
  uint64_t notifies(uint32_t index) const { return index < 3 ? notifies_[index] : 0; }
  // The device's view of the DMA memory (what OnRingStarted got).
  std::shared_ptr<const vhost_user::MemoryTable> table() const { return table_; }

 private:
  void EndSession();

  vhost_user::DeviceHooks* const device_;
  const size_t dma_bytes_;
  bool reachable_ = true;
  int sessions_ = 0;
  bool started_ = false;
  uint64_t acked_ = 0;
  UniqueFd memfd_;
  std::shared_ptr<const void> mapping_;
  uint8_t* host_ = nullptr;
  virtqueue::GuestMemory memory_;
  std::shared_ptr<const vhost_user::MemoryTable> table_;
  size_t allocated_ = 0;
  std::vector<QueueLayout> layouts_;
  std::vector<vhost_user::SharedFd> kick_, call_;
  vhost_user::SharedFd err_;
  UniqueFd hangup_;
  uint64_t notifies_[3] = {0, 0, 0};
};

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_DIRECT_BUS_H_
