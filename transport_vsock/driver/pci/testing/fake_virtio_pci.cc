#include "transport_vsock/driver/pci/testing/fake_virtio_pci.h"

#include "core/base/logging.h"
#include "transport_vsock/driver/pci/virtio_pci_caps.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace testing {
namespace {

void Put(std::vector<uint8_t>& b, size_t at, uint64_t v, int width) {
  for (int i = 0; i < width; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

void VirtioCap(std::vector<uint8_t>& b, size_t at, uint8_t next, uint8_t type, uint32_t offset,
               uint32_t length, uint8_t cap_len) {
  b[at] = 0x09;
  b[at + 1] = next;
  b[at + 2] = cap_len;
  b[at + 3] = type;
  b[at + 4] = FakeVirtioPci::kBar;
  Put(b, at + 8, offset, 4);
  Put(b, at + 12, length, 4);
}

uint32_t Lo(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t Hi(uint64_t v) { return static_cast<uint32_t>(v >> 32); }
void SetLo(uint64_t& v, uint32_t x) { v = (v & ~uint64_t{0xffffffff}) | x; }
void SetHi(uint64_t& v, uint32_t x) { v = (v & 0xffffffff) | (uint64_t{x} << 32); }

}  // namespace

FakeVirtioPci::FakeVirtioPci(uint16_t num_queues) : queues(num_queues) {
  for (uint16_t i = 0; i < num_queues; ++i) queues[i].notify_off = i;
}

std::vector<uint8_t> FakeVirtioPci::ConfigSpace() const {
  std::vector<uint8_t> b(256, 0);
  Put(b, 0, kVirtioVendorId, 2);
  Put(b, 2, kVirtioVsockDeviceId, 2);
  Put(b, 6, 1 << 4, 2);  // capability list
  b[0x34] = 0x40;
  b[0x40] = 0x11;  // MSI-X
  b[0x41] = 0x50;
  Put(b, 0x42, static_cast<uint16_t>(msix_vectors - 1), 2);
  VirtioCap(b, 0x50, 0x60, 1, kCommonOffset, 0x1000, 16);
  VirtioCap(b, 0x60, 0x78, 2, kNotifyOffset, 0x1000, 20);
  Put(b, 0x60 + 16, kNotifyMultiplier, 4);
  VirtioCap(b, 0x78, 0x88, 3, kIsrOffset, 0x1000, 16);
  VirtioCap(b, 0x88, 0x00, 4, kDeviceOffset, 0x1000, 16);
  return b;
}

FakeVirtioPci::Queue* FakeVirtioPci::selected() {
  return queue_select_ < queues.size() ? &queues[queue_select_] : nullptr;
}

uint32_t FakeVirtioPci::Read(uint64_t offset, int width) {
  VRPC_CHECK(FitsIn(offset, static_cast<uint64_t>(width), kBarSize));
  if (offset < kIsrOffset) return ReadCommon(static_cast<uint32_t>(offset), width);
  if (offset == kIsrOffset) {
    const uint8_t v = isr;
    isr = 0;
    return v;
  }
  if (offset >= kDeviceOffset && offset < kDeviceOffset + 8) {
    return static_cast<uint8_t>(guest_cid >> (8 * (offset - kDeviceOffset)));
  }
  return 0;
}

void FakeVirtioPci::Write(uint64_t offset, int width, uint32_t value) {
  VRPC_CHECK(FitsIn(offset, static_cast<uint64_t>(width), kBarSize));
  if (offset < kIsrOffset) return WriteCommon(static_cast<uint32_t>(offset), width, value);
  if (offset >= kNotifyOffset && offset < kNotifyOffset + 0x1000) {
    VRPC_CHECK(width == 2);
    doorbells.push_back(static_cast<uint16_t>(value));
  }
}

uint32_t FakeVirtioPci::ReadCommon(uint32_t off, int width) {
  Queue* q = selected();
  switch (off) {
    case common::kDeviceFeatureSelect:
      return device_feature_select_;
    case common::kDeviceFeature:
      return device_feature_select_ == 0 ? Lo(device_features)
             : device_feature_select_ == 1 ? Hi(device_features)
                                           : 0;
    case common::kDriverFeatureSelect:
      return driver_feature_select_;
    case common::kDriverFeature:
      return driver_feature_select_ == 0 ? Lo(driver_features) : Hi(driver_features);
    case common::kConfigMsixVector:
      return config_msix;
    case common::kNumQueues:
      return static_cast<uint32_t>(queues.size());
    case common::kDeviceStatus:
      if (pending_reset_reads_ > 0) {
        --pending_reset_reads_;
        return 0x0f;
      }
      return status;
    case common::kConfigGeneration:
      return config_generation;
    case common::kQueueSelect:
      return queue_select_;
    case common::kQueueSize:
      return q == nullptr ? 0 : (q->size != 0 ? q->size : q->max_size);
    case common::kQueueMsixVector:
      return q == nullptr ? 0xffff : q->msix;
    case common::kQueueEnable:
      return q == nullptr ? 0 : q->enable;
    case common::kQueueNotifyOff:
      return q == nullptr ? 0 : q->notify_off;
    case common::kQueueDesc:
      return q == nullptr ? 0 : Lo(q->desc);
    case common::kQueueDesc + 4:
      return q == nullptr ? 0 : Hi(q->desc);
    case common::kQueueDriver:
      return q == nullptr ? 0 : Lo(q->driver);
    case common::kQueueDriver + 4:
      return q == nullptr ? 0 : Hi(q->driver);
    case common::kQueueDevice:
      return q == nullptr ? 0 : Lo(q->device);
    case common::kQueueDevice + 4:
      return q == nullptr ? 0 : Hi(q->device);
  }
  return 0;
}

void FakeVirtioPci::WriteCommon(uint32_t off, int width, uint32_t v) {
  Queue* q = selected();
  switch (off) {
    case common::kDeviceFeatureSelect:
      device_feature_select_ = v;
      return;
    case common::kDriverFeatureSelect:
      driver_feature_select_ = v;
      return;
    case common::kDriverFeature:
      if (driver_feature_select_ == 0) SetLo(driver_features, v);
      if (driver_feature_select_ == 1) SetHi(driver_features, v);
      return;
    case common::kConfigMsixVector:
      config_msix = v < msix_vectors ? static_cast<uint16_t>(v) : 0xffff;
      return;
    case common::kDeviceStatus: {
      const uint8_t s = static_cast<uint8_t>(v);
      status_writes.push_back(s);
      if (s == 0) {
        ++resets;
        status = 0;
        driver_features = 0;
        config_msix = 0xffff;
        for (Queue& each : queues) each = Queue{each.max_size, 0, 0xffff, 0, each.notify_off};
        pending_reset_reads_ = reset_reads;
        return;
      }
      status = s;
      if ((s & 8) != 0 && !accept_features_ok) status = static_cast<uint8_t>(s & ~8);
      return;
    }
    case common::kQueueSelect:
      queue_select_ = static_cast<uint16_t>(v);
      return;
  }
  if (q == nullptr) return;
  switch (off) {
    case common::kQueueSize:
      q->size = static_cast<uint16_t>(v);
      return;
    case common::kQueueMsixVector:
      q->msix = v < msix_vectors ? static_cast<uint16_t>(v) : 0xffff;
      return;
    case common::kQueueEnable:
      q->enable = static_cast<uint16_t>(v);
      return;
    case common::kQueueDesc:
      return SetLo(q->desc, v);
    case common::kQueueDesc + 4:
      return SetHi(q->desc, v);
    case common::kQueueDriver:
      return SetLo(q->driver, v);
    case common::kQueueDriver + 4:
      return SetHi(q->driver, v);
    case common::kQueueDevice:
      return SetLo(q->device, v);
    case common::kQueueDevice + 4:
      return SetHi(q->device, v);
  }
}

}  // namespace testing
}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
