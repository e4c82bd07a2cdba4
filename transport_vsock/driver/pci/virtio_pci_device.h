// File: transport_vsock/driver/pci/virtio_pci_device.h
//
// VirtioPciDevice: the virtio 1.x PCI transport's register protocol (VIRTIO
// 1.2 §4.1.4, §3.1.1) over RegisterIo windows, shared by the UIO and VFIO
// buses: reset, feature negotiation, device config with the generation
// check, queue setup through the common config (queue_select, size, MSI-X
// vector, ring addresses, enable), notification at notify base +
// queue_notify_off * notify_off_multiplier, the ISR, DRIVER_OK.
//
// The device is untrusted: every value read back is checked before use
// (queue sizes, notify offsets against the notify structure, MSI-X vector
// acceptance, FEATURES_OK, a status of 0xff meaning the function is gone),
// and failures are Status values, never crashes.
//
// Not thread-safe; does not own the RegisterIo windows (they must outlive
// it).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PCI_VIRTIO_PCI_DEVICE_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PCI_VIRTIO_PCI_DEVICE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/driver/pci/registers.h"
#include "transport_vsock/driver/pci/virtio_pci_caps.h"

namespace vrpc {
namespace vsock {
namespace pci {

// Device status bits (VIRTIO 1.2 §2.1).
inline constexpr uint8_t kStatusAcknowledge = 1;
inline constexpr uint8_t kStatusDriver = 2;
inline constexpr uint8_t kStatusDriverOk = 4;
inline constexpr uint8_t kStatusFeaturesOk = 8;
inline constexpr uint8_t kStatusNeedsReset = 64;
inline constexpr uint8_t kStatusFailed = 128;
// ISR bits.
inline constexpr uint8_t kIsrQueue = 1;
inline constexpr uint8_t kIsrConfig = 2;
inline constexpr uint16_t kMsixNoVector = 0xffff;

class VirtioPciDevice {
 public:
  // |bars[i]| is BAR i's window (null if not mapped). Checks that every
  // structure in |caps| lies inside its window (kDataLoss otherwise).
  static absl::StatusOr<std::unique_ptr<VirtioPciDevice>> Create(
      const VirtioPciCaps& caps, const std::array<RegisterIo*, kNumBars>& bars,
      absl::Duration reset_timeout = absl::Seconds(1));

  VirtioPciDevice(const VirtioPciDevice&) = delete;
  VirtioPciDevice& operator=(const VirtioPciDevice&) = delete;

  // Writes 0 to device_status and waits (up to the reset timeout) until it
  // reads 0. kDeadlineExceeded if it does not; kUnavailable if the function
  // reads as all ones (gone).
  [[nodiscard]] absl::Status Reset();

  // ACKNOWLEDGE | DRIVER, reads the 64 offered feature bits, writes
  // offered & |wanted|, sets FEATURES_OK and checks it stuck. Returns the
  // accepted bits. kFailedPrecondition without VERSION_1 or if the device
  // clears FEATURES_OK (FAILED is then set).
  [[nodiscard]] absl::StatusOr<uint64_t> NegotiateFeatures(uint64_t wanted);
  uint64_t offered_features() const { return offered_; }

  // Device config bytes [offset, offset + out.size()), read again until the
  // config_generation is stable. kOutOfRange outside the device structure;
  // kAborted if the generation never settles.
  [[nodiscard]] absl::Status ReadConfig(uint32_t offset, absl::Span<uint8_t> out);

  uint16_t num_queues();
  // The device's maximum size for queue |index| (0: the queue does not
  // exist). Selects the queue.
  uint16_t QueueMaxSize(uint32_t index);

  // Programs queue |index| (size, |msix_vector| -- kMsixNoVector for INTx
  // -- ring addresses) and enables it. kInvalidArgument for a size the
  // device does not take; kResourceExhausted if it refuses the MSI-X vector;
  // kDataLoss for a queue_notify_off outside the notify structure.
  [[nodiscard]] absl::Status SetupQueue(uint32_t index, const QueueLayout& layout,
                                        uint16_t msix_vector = kMsixNoVector);

  // The config-change MSI-X vector; kResourceExhausted if refused.
  [[nodiscard]] absl::Status SetConfigVector(uint16_t vector);

  // Sets DRIVER_OK. kFailedPrecondition if the device then reports
  // NEEDS_RESET or FAILED.
  [[nodiscard]] absl::Status Start();

  // Writes |index| to the queue's doorbell (a queue not set up: nothing).
  void Notify(uint32_t index);

  // Reads (and so clears) the ISR status byte.
  uint8_t ReadIsr();
  uint8_t status();

 private:
  VirtioPciDevice(const VirtioPciCaps& caps, const std::array<RegisterIo*, kNumBars>& bars,
                  absl::Duration reset_timeout);
  uint32_t ReadCommon(uint32_t offset, int width);
  void WriteCommon(uint32_t offset, int width, uint32_t value);
  void WriteCommon64(uint32_t offset, uint64_t value);
  void SetStatus(uint8_t status);

  const VirtioPciCaps caps_;
  RegisterIo* const common_;
  RegisterIo* const notify_;
  RegisterIo* const isr_;
  RegisterIo* const device_;  // null without a device config structure
  const absl::Duration reset_timeout_;
  uint64_t offered_ = 0;
  // Doorbell offset (in the notify BAR) per queue set up; -1: none.
  std::vector<int64_t> doorbells_;
};

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PCI_VIRTIO_PCI_DEVICE_H_
