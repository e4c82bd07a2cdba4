// File: transport_vsock/driver/pci/virtio_pci_caps.h
//
// Parses a virtio 1.x PCI function's configuration space (VIRTIO 1.2
// §4.1.4): the vendor-specific capabilities (id 0x09) that say where the
// common config, notify, ISR and device config structures lie (BAR, offset,
// length, and the notify_off_multiplier), and the MSI-X capability (id 0x11)
// that VFIO needs. Pure: bytes in, a checked description out.
//
// The configuration space is device input: the capability list is walked
// with a bound and loop detection, every structure must lie inside a BAR of
// the given size, and lengths must cover what the driver touches. The first
// capability of each type wins (the spec's "driver SHOULD use the first").
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PCI_VIRTIO_PCI_CAPS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PCI_VIRTIO_PCI_CAPS_H_

#include <array>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vrpc {
namespace vsock {
namespace pci {

inline constexpr uint16_t kVirtioVendorId = 0x1af4;
inline constexpr uint16_t kVirtioVsockDeviceId = 0x1053;  // 0x1040 + 19
inline constexpr int kNumBars = 6;

// PCI configuration space registers (PCI Local Bus 3.0 §6.2).
inline constexpr uint32_t kPciCommand = 0x04;
inline constexpr uint16_t kPciCommandMemory = 1 << 1;
inline constexpr uint16_t kPciCommandMaster = 1 << 2;
inline constexpr uint16_t kPciCommandIntxDisable = 1 << 10;

// Virtio PCI capability cfg_type values.
enum class VirtioCapType : uint8_t { kCommon = 1, kNotify = 2, kIsr = 3, kDevice = 4 };

// The virtio common configuration structure (struct virtio_pci_common_cfg).
namespace common {
inline constexpr uint32_t kDeviceFeatureSelect = 0;  // le32
inline constexpr uint32_t kDeviceFeature = 4;        // le32
inline constexpr uint32_t kDriverFeatureSelect = 8;  // le32
inline constexpr uint32_t kDriverFeature = 12;       // le32
inline constexpr uint32_t kConfigMsixVector = 16;    // le16
inline constexpr uint32_t kNumQueues = 18;           // le16
inline constexpr uint32_t kDeviceStatus = 20;        // u8
inline constexpr uint32_t kConfigGeneration = 21;    // u8
inline constexpr uint32_t kQueueSelect = 22;         // le16
inline constexpr uint32_t kQueueSize = 24;           // le16
inline constexpr uint32_t kQueueMsixVector = 26;     // le16
inline constexpr uint32_t kQueueEnable = 28;         // le16
inline constexpr uint32_t kQueueNotifyOff = 30;      // le16
inline constexpr uint32_t kQueueDesc = 32;           // le64
inline constexpr uint32_t kQueueDriver = 40;         // le64
inline constexpr uint32_t kQueueDevice = 48;         // le64
inline constexpr uint32_t kSize = 56;
}  // namespace common

// One structure: |length| bytes at |offset| in BAR |bar|.
struct VirtioPciRegion {
  uint8_t bar = 0;
  uint32_t offset = 0;
  uint32_t length = 0;
};

struct VirtioPciCaps {
  VirtioPciRegion common;
  VirtioPciRegion notify;
  uint32_t notify_off_multiplier = 0;
  VirtioPciRegion isr;
  bool has_device_cfg = false;
  VirtioPciRegion device;
  // MSI-X (PCI cap 0x11): table size (vectors) and where the table lies.
  bool has_msix = false;
  uint16_t msix_vectors = 0;
  uint32_t msix_cap_offset = 0;  // in config space (Message Control at +2)
};

// Parses |config| (at least the 256-byte PCI header + capabilities; more is
// ignored). |bar_sizes[i]| is BAR i's size in bytes (0: absent). Returns
// kFailedPrecondition if the function is no virtio 1.x device (no
// capability list, or common/notify/ISR missing), kDataLoss for a malformed
// capability (a loop, a pointer or structure out of bounds, a structure
// outside its BAR or too short).
absl::StatusOr<VirtioPciCaps> ParseVirtioPciCaps(absl::Span<const uint8_t> config,
                                                 const std::array<uint64_t, kNumBars>& bar_sizes);

// Vendor and device id from |config| (kDataLoss if shorter than 4 bytes).
absl::StatusOr<std::pair<uint16_t, uint16_t>> PciIds(absl::Span<const uint8_t> config);

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PCI_VIRTIO_PCI_CAPS_H_
