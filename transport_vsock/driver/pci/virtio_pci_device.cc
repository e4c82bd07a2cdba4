#include "transport_vsock/driver/pci/virtio_pci_device.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace {

constexpr int kConfigRetries = 16;
constexpr uint8_t kStatusGone = 0xff;  // reads of a vanished function

absl::Status CheckWindow(const char* name, const VirtioPciRegion& r,
                         const std::array<RegisterIo*, kNumBars>& bars) {
  if (r.bar >= kNumBars || bars[r.bar] == nullptr ||
      !FitsIn(r.offset, r.length, bars[r.bar]->size())) {
    return absl::DataLossError(absl::StrCat("virtio ", name, " structure outside BAR ", r.bar));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<VirtioPciDevice>> VirtioPciDevice::Create(
    const VirtioPciCaps& caps, const std::array<RegisterIo*, kNumBars>& bars,
    absl::Duration reset_timeout) {
  if (absl::Status s = CheckWindow("common", caps.common, bars); !s.ok()) return s;
  if (absl::Status s = CheckWindow("notify", caps.notify, bars); !s.ok()) return s;
  if (absl::Status s = CheckWindow("ISR", caps.isr, bars); !s.ok()) return s;
  if (caps.common.length < common::kSize || caps.notify.length < 2 || caps.isr.length < 1) {
    return absl::DataLossError("virtio structures too short");
  }
  if (caps.has_device_cfg) {
    if (absl::Status s = CheckWindow("device", caps.device, bars); !s.ok()) return s;
  }
  return std::unique_ptr<VirtioPciDevice>(new VirtioPciDevice(caps, bars, reset_timeout));
}

VirtioPciDevice::VirtioPciDevice(const VirtioPciCaps& caps,
                                 const std::array<RegisterIo*, kNumBars>& bars,
                                 absl::Duration reset_timeout)
    : caps_(caps),
      common_(bars[caps.common.bar]),
      notify_(bars[caps.notify.bar]),
      isr_(bars[caps.isr.bar]),
      device_(caps.has_device_cfg ? bars[caps.device.bar] : nullptr),
      reset_timeout_(reset_timeout) {}

uint32_t VirtioPciDevice::ReadCommon(uint32_t offset, int width) {
  return common_->Read(caps_.common.offset + uint64_t{offset}, width);
}

void VirtioPciDevice::WriteCommon(uint32_t offset, int width, uint32_t value) {
  common_->Write(caps_.common.offset + uint64_t{offset}, width, value);
}

void VirtioPciDevice::WriteCommon64(uint32_t offset, uint64_t value) {
  // Two 32-bit halves, low first (the spec allows drivers 32-bit accesses).
  WriteCommon(offset, 4, static_cast<uint32_t>(value));
  WriteCommon(offset + 4, 4, static_cast<uint32_t>(value >> 32));
}

uint8_t VirtioPciDevice::status() {
  return static_cast<uint8_t>(ReadCommon(common::kDeviceStatus, 1));
}

void VirtioPciDevice::SetStatus(uint8_t s) { WriteCommon(common::kDeviceStatus, 1, s); }

absl::Status VirtioPciDevice::Reset() {
  doorbells_.clear();
  offered_ = 0;
  SetStatus(0);
  const absl::Time deadline = absl::Now() + reset_timeout_;
  for (int spins = 0;; ++spins) {
    const uint8_t s = status();
    if (s == 0) return absl::OkStatus();
    if (s == kStatusGone && ReadCommon(common::kNumQueues, 2) == 0xffff) {
      return absl::UnavailableError("the virtio PCI function reads as all ones (gone)");
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("virtio device reset: status still ", s, " after ",
                       absl::FormatDuration(reset_timeout_)));
    }
    if (spins > 100) absl::SleepFor(absl::Microseconds(100));
  }
}

absl::StatusOr<uint64_t> VirtioPciDevice::NegotiateFeatures(uint64_t wanted) {
  SetStatus(kStatusAcknowledge);
  SetStatus(kStatusAcknowledge | kStatusDriver);
  WriteCommon(common::kDeviceFeatureSelect, 4, 0);
  uint64_t offered = ReadCommon(common::kDeviceFeature, 4);
  WriteCommon(common::kDeviceFeatureSelect, 4, 1);
  offered |= uint64_t{ReadCommon(common::kDeviceFeature, 4)} << 32;
  offered_ = offered;
  const uint64_t accepted = offered & wanted;
  if ((accepted & kVirtioFeatureVersion1) == 0) {
    SetStatus(kStatusAcknowledge | kStatusDriver | kStatusFailed);
    return absl::FailedPreconditionError(
        absl::StrCat("the device does not offer VIRTIO_F_VERSION_1 (offers 0x",
                     absl::Hex(offered), ")"));
  }
  WriteCommon(common::kDriverFeatureSelect, 4, 0);
  WriteCommon(common::kDriverFeature, 4, static_cast<uint32_t>(accepted));
  WriteCommon(common::kDriverFeatureSelect, 4, 1);
  WriteCommon(common::kDriverFeature, 4, static_cast<uint32_t>(accepted >> 32));
  SetStatus(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  if ((status() & kStatusFeaturesOk) == 0) {
    SetStatus(kStatusAcknowledge | kStatusDriver | kStatusFailed);
    return absl::FailedPreconditionError(
        absl::StrCat("the device refused features 0x", absl::Hex(accepted)));
  }
  return accepted;
}

absl::Status VirtioPciDevice::ReadConfig(uint32_t offset, absl::Span<uint8_t> out) {
  if (device_ == nullptr || !FitsIn(offset, out.size(), caps_.device.length)) {
    return absl::OutOfRangeError(absl::StrCat("device config [", offset, ", +", out.size(),
                                              ") outside the device structure"));
  }
  for (int attempt = 0; attempt < kConfigRetries; ++attempt) {
    const uint32_t before = ReadCommon(common::kConfigGeneration, 1);
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<uint8_t>(device_->Read(caps_.device.offset + uint64_t{offset} + i, 1));
    }
    if (ReadCommon(common::kConfigGeneration, 1) == before) return absl::OkStatus();
  }
  return absl::AbortedError("the device config generation never settled");
}

uint16_t VirtioPciDevice::num_queues() {
  return static_cast<uint16_t>(ReadCommon(common::kNumQueues, 2));
}

uint16_t VirtioPciDevice::QueueMaxSize(uint32_t index) {
  if (index >= num_queues()) return 0;
  WriteCommon(common::kQueueSelect, 2, index);
  return static_cast<uint16_t>(ReadCommon(common::kQueueSize, 2));
}

absl::Status VirtioPciDevice::SetupQueue(uint32_t index, const QueueLayout& layout,
                                         uint16_t msix_vector) {
  const uint16_t max = QueueMaxSize(index);  // selects |index|
  if (max == 0 || layout.size > max || !virtqueue::IsValidQueueSize(layout.size)) {
    return absl::InvalidArgumentError(absl::StrCat("queue ", index, ": size ", layout.size,
                                                   " (the device takes up to ", max, ")"));
  }
  WriteCommon(common::kQueueSize, 2, layout.size);
  WriteCommon(common::kQueueMsixVector, 2, msix_vector);
  if (msix_vector != kMsixNoVector && ReadCommon(common::kQueueMsixVector, 2) != msix_vector) {
    return absl::ResourceExhaustedError(
        absl::StrCat("queue ", index, ": the device refused MSI-X vector ", msix_vector));
  }
  WriteCommon64(common::kQueueDesc, layout.desc_addr);
  WriteCommon64(common::kQueueDriver, layout.avail_addr);
  WriteCommon64(common::kQueueDevice, layout.used_addr);
  const uint64_t doorbell =
      uint64_t{ReadCommon(common::kQueueNotifyOff, 2)} * caps_.notify_off_multiplier;
  if (!FitsIn(doorbell, 2, caps_.notify.length)) {
    return absl::DataLossError(absl::StrCat("queue ", index, ": doorbell at ", doorbell,
                                            " outside the notify structure of ",
                                            caps_.notify.length, " bytes"));
  }
  WriteCommon(common::kQueueEnable, 2, 1);
  if (doorbells_.size() <= index) doorbells_.resize(index + 1, -1);
  doorbells_[index] = static_cast<int64_t>(caps_.notify.offset + doorbell);
  return absl::OkStatus();
}

absl::Status VirtioPciDevice::SetConfigVector(uint16_t vector) {
  WriteCommon(common::kConfigMsixVector, 2, vector);
  if (vector != kMsixNoVector && ReadCommon(common::kConfigMsixVector, 2) != vector) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the device refused config MSI-X vector ", vector));
  }
  return absl::OkStatus();
}

absl::Status VirtioPciDevice::Start() {
  SetStatus(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  const uint8_t s = status();
  if ((s & (kStatusNeedsReset | kStatusFailed)) != 0 || (s & kStatusDriverOk) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("device status ", s, " after DRIVER_OK"));
  }
  return absl::OkStatus();
}

void VirtioPciDevice::Notify(uint32_t index) {
  if (index >= doorbells_.size() || doorbells_[index] < 0) return;
  notify_->Write(static_cast<uint64_t>(doorbells_[index]), 2, index);
}

uint8_t VirtioPciDevice::ReadIsr() {
  return static_cast<uint8_t>(isr_->Read(caps_.isr.offset, 1));
}

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
