// File: transport_vsock/driver/pci/testing/fake_virtio_pci.h
//
// FakeVirtioPci: a simulated virtio 1.x PCI function for tests of the PCI
// buses: a configuration space with the virtio capabilities (and MSI-X),
// and a BAR register file that behaves like QEMU's virtio-pci modern BAR
// (feature and queue select registers, per-queue state, reset, FEATURES_OK
// acceptance, MSI-X vector acceptance, doorbells, the ISR cleared on read,
// a config generation). It records what the driver did.
//
// Layout of the BAR (kBar, 16 KiB): common config at 0x0000, ISR at 0x1000,
// device config (le64 guest_cid) at 0x2000, notify at 0x3000 with
// notify_off_multiplier 4 (queue i's doorbell at 0x3000 + 4 * i).
//
// Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PCI_TESTING_FAKE_VIRTIO_PCI_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PCI_TESTING_FAKE_VIRTIO_PCI_H_

#include <cstdint>
#include <string>
#include <vector>

#include "transport_vsock/driver/pci/registers.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace testing {

class FakeVirtioPci final : public RegisterIo {
 public:
  static constexpr int kBar = 4;
  static constexpr uint64_t kBarSize = 0x4000;
  static constexpr uint32_t kCommonOffset = 0x0000;
  static constexpr uint32_t kIsrOffset = 0x1000;
  static constexpr uint32_t kDeviceOffset = 0x2000;
  static constexpr uint32_t kNotifyOffset = 0x3000;
  static constexpr uint32_t kNotifyMultiplier = 4;

  struct Queue {
    uint16_t max_size = 128;
    uint16_t size = 0;
    uint16_t msix = 0xffff;
    uint16_t enable = 0;
    uint16_t notify_off = 0;
    uint64_t desc = 0, driver = 0, device = 0;
  };

  explicit FakeVirtioPci(uint16_t num_queues = 3);

  // The 256-byte configuration space: vendor 1af4 device 1053, status with
  // the capability list, caps: MSI-X (msix_vectors) at 0x40, then common,
  // notify, ISR, device at 0x50.. chained in that order.
  std::vector<uint8_t> ConfigSpace() const;

  // RegisterIo over the BAR.
  uint64_t size() const override { return kBarSize; }
  uint32_t Read(uint64_t offset, int width) override;
  void Write(uint64_t offset, int width, uint32_t value) override;

  // Knobs.
  uint64_t device_features = (uint64_t{1} << 32) | (uint64_t{1} << 29) | 1;
  bool accept_features_ok = true;   // false: clears FEATURES_OK
  uint16_t msix_vectors = 4;        // vectors the device accepts are < this
  uint64_t guest_cid = 3;
  int reset_reads = 0;              // status reads that still show non-zero after reset
  uint8_t isr = 0;
  uint8_t config_generation = 0;
  std::vector<Queue> queues;

  // Recorded.
  uint8_t status = 0;
  uint64_t driver_features = 0;
  uint16_t config_msix = 0xffff;
  std::vector<uint16_t> doorbells;   // values written to the notify area
  std::vector<uint8_t> status_writes;
  int resets = 0;

 private:
  uint32_t ReadCommon(uint32_t off, int width);
  void WriteCommon(uint32_t off, int width, uint32_t value);
  Queue* selected();

  uint32_t device_feature_select_ = 0;
  uint32_t driver_feature_select_ = 0;
  uint16_t queue_select_ = 0;
  int pending_reset_reads_ = 0;
};

}  // namespace testing
}  // namespace pci
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PCI_TESTING_FAKE_VIRTIO_PCI_H_
