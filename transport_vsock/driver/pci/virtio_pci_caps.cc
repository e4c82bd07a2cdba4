#include "transport_vsock/driver/pci/virtio_pci_caps.h"

#include "absl/strings/str_cat.h"
#include "transport_vsock/driver/pci/registers.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace {

constexpr uint32_t kPciStatus = 0x06;
constexpr uint16_t kPciStatusCapList = 1 << 4;
constexpr uint32_t kPciCapPointer = 0x34;
constexpr uint32_t kConfigHeaderEnd = 0x40;
constexpr uint32_t kConfigEnd = 0x100;  // capabilities live in the first 256 bytes
constexpr uint8_t kCapVendor = 0x09;
constexpr uint8_t kCapMsix = 0x11;
constexpr uint32_t kVirtioCapLen = 16;        // struct virtio_pci_cap
constexpr uint32_t kVirtioNotifyCapLen = 20;  // + le32 notify_off_multiplier
constexpr uint32_t kMsixCapLen = 12;
constexpr int kMaxCaps = 48;  // (256 - 64) / 4: more means a loop

uint32_t Le(absl::Span<const uint8_t> b, uint32_t at, int width) {
  uint32_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | b[at + static_cast<uint32_t>(i)];
  return v;
}

absl::Status Malformed(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("virtio PCI capabilities: ", what));
}

absl::Status CheckRegion(const char* name, const VirtioPciRegion& r, uint32_t min_length,
                         const std::array<uint64_t, kNumBars>& bar_sizes) {
  if (r.bar >= kNumBars || bar_sizes[r.bar] == 0) {
    return Malformed(absl::StrCat(name, " in BAR ", r.bar, ", which is absent"));
  }
  if (r.length < min_length || !FitsIn(r.offset, r.length, bar_sizes[r.bar])) {
    return Malformed(absl::StrCat(name, " [", r.offset, ", +", r.length, ") in BAR ", r.bar,
                                  " of ", bar_sizes[r.bar], " bytes (need ", min_length, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::pair<uint16_t, uint16_t>> PciIds(absl::Span<const uint8_t> config) {
  if (config.size() < 4) return Malformed("config space shorter than 4 bytes");
  return std::make_pair(static_cast<uint16_t>(Le(config, 0, 2)),
                        static_cast<uint16_t>(Le(config, 2, 2)));
}

absl::StatusOr<VirtioPciCaps> ParseVirtioPciCaps(absl::Span<const uint8_t> config,
                                                 const std::array<uint64_t, kNumBars>& bar_sizes) {
  if (config.size() < kConfigEnd) return Malformed("config space shorter than 256 bytes");
  if ((Le(config, kPciStatus, 2) & kPciStatusCapList) == 0) {
    return absl::FailedPreconditionError("the PCI function has no capability list");
  }
  VirtioPciCaps caps;
  bool seen[5] = {};
  uint32_t ptr = config[kPciCapPointer] & ~3u;  // the low two bits are reserved
  for (int n = 0; ptr != 0; ++n) {
    if (n == kMaxCaps) return Malformed("capability list loops");
    if (ptr < kConfigHeaderEnd || ptr + 2 > kConfigEnd) {
      return Malformed(absl::StrCat("capability pointer ", ptr, " out of bounds"));
    }
    const uint8_t id = config[ptr];
    const uint32_t next = config[ptr + 1] & ~3u;
    if (id == kCapMsix && !caps.has_msix) {
      if (ptr + kMsixCapLen > kConfigEnd) return Malformed("MSI-X capability truncated");
      caps.has_msix = true;
      caps.msix_vectors = static_cast<uint16_t>((Le(config, ptr + 2, 2) & 0x7ff) + 1);
      caps.msix_cap_offset = ptr;
    }
    if (id == kCapVendor) {
      const uint32_t cap_len = config[ptr + 2];
      if (cap_len < kVirtioCapLen || ptr + cap_len > kConfigEnd) {
        return Malformed(absl::StrCat("virtio capability at ", ptr, " has length ", cap_len));
      }
      const uint8_t type = config[ptr + 3];
      VirtioPciRegion r;
      r.bar = config[ptr + 4];
      r.offset = Le(config, ptr + 8, 4);
      r.length = Le(config, ptr + 12, 4);
      // Unknown types (PCI_CFG 5, SHARED_MEMORY 8, vendor 9) and BARs the
      // spec reserves are skipped; a second capability of a type too.
      if (type >= 1 && type <= 4 && !seen[type] && r.bar < kNumBars) {
        seen[type] = true;
        switch (static_cast<VirtioCapType>(type)) {
          case VirtioCapType::kCommon:
            caps.common = r;
            break;
          case VirtioCapType::kNotify:
            if (cap_len < kVirtioNotifyCapLen) return Malformed("notify capability truncated");
            caps.notify = r;
            caps.notify_off_multiplier = Le(config, ptr + 16, 4);
            break;
          case VirtioCapType::kIsr:
            caps.isr = r;
            break;
          case VirtioCapType::kDevice:
            caps.device = r;
            caps.has_device_cfg = true;
            break;
        }
      }
    }
    ptr = next;
  }
  if (!seen[1] || !seen[2] || !seen[3]) {
    return absl::FailedPreconditionError(
        "not a virtio 1.x PCI function: common, notify or ISR capability missing");
  }
  if (absl::Status s = CheckRegion("common config", caps.common, common::kSize, bar_sizes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRegion("notify", caps.notify, 2, bar_sizes); !s.ok()) return s;
  if (absl::Status s = CheckRegion("ISR", caps.isr, 1, bar_sizes); !s.ok()) return s;
  if (caps.has_device_cfg) {
    if (absl::Status s = CheckRegion("device config", caps.device, 1, bar_sizes); !s.ok()) {
      return s;
    }
  }
  return caps;
}

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
