// File: transport_vsock/vhost_user/testing/recording_device.h
//
// RecordingDevice: a DeviceHooks implementation for tests. It behaves like a
// well-mannered device (keeps the MemoryTable and SharedFds of started rings
// until they stop or the session resets, so descriptor and mapping counts in
// tests include the device's share) and records every hook call as a short
// string, e.g. "started(0)", "updated(1,enabled=1)", "stopped(0)",
// "memory(2)", "features(0x170000000)", "reset". Test-only.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_RECORDING_DEVICE_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_RECORDING_DEVICE_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/memory.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {
namespace testing {

// VERSION_1 | EVENT_IDX | INDIRECT_DESC: what FACTS.md §0's backend offered.
inline constexpr uint64_t kVsockLikeFeatures =
    kFeatureVersion1 | kFeatureEventIdx | (1ull << 28);

class RecordingDevice : public DeviceHooks {
 public:
  explicit RecordingDevice(uint32_t num_queues = 3,
                           uint64_t features = kVsockLikeFeatures)
      : num_queues_(num_queues), features_(features) {
    // virtio_vsock_config { le64 guest_cid = 3; }
    config_ = {3, 0, 0, 0, 0, 0, 0, 0};
  }

  uint64_t Features() const override { return features_; }
  uint32_t NumQueues() const override { return num_queues_; }

  absl::Status OnFeaturesAcked(uint64_t features) override {
    events.push_back(absl::StrCat("features(0x", absl::Hex(features), ")"));
    return refuse_features ? absl::InvalidArgumentError("refused")
                           : absl::OkStatus();
  }

  uint32_t ConfigSize() const override {
    return static_cast<uint32_t>(config_.size());
  }
  absl::StatusOr<std::vector<uint8_t>> ReadConfig(uint32_t offset,
                                                  uint32_t size) override {
    events.push_back(absl::StrCat("read_config(", offset, ",", size, ")"));
    return std::vector<uint8_t>(config_.begin() + offset,
                                config_.begin() + offset + size);
  }
  absl::Status WriteConfig(uint32_t offset, absl::Span<const uint8_t> bytes,
                           uint32_t flags) override {
    events.push_back(absl::StrCat("write_config(", offset, ",", bytes.size(), ")"));
    if (!config_writable) return absl::PermissionDeniedError("read-only");
    std::copy(bytes.begin(), bytes.end(), config_.begin() + offset);
    return absl::OkStatus();
  }

  void OnMemoryTableChanged(std::shared_ptr<const MemoryTable> table) override {
    events.push_back(absl::StrCat("memory(", table->regions().size(), ")"));
    memory = std::move(table);
  }
  void OnRingStarted(const RingConfig& ring,
                     std::shared_ptr<const MemoryTable> table) override {
    events.push_back(absl::StrCat("started(", ring.index, ")"));
    running[ring.index] = ring;
    ring_memory[ring.index] = std::move(table);
  }
  void OnRingUpdated(const RingConfig& ring) override {
    events.push_back(absl::StrCat("updated(", ring.index, ",enabled=",
                                  ring.enabled ? 1 : 0, ")"));
    running[ring.index] = ring;
  }
  uint16_t OnRingStopped(uint32_t index) override {
    events.push_back(absl::StrCat("stopped(", index, ")"));
    running.erase(index);
    ring_memory.erase(index);
    return next_avail[index];
  }
  void OnReset() override {
    events.push_back("reset");
    running.clear();
    ring_memory.clear();
    memory.reset();
  }

  std::string Events() const {
    std::string out;
    for (const std::string& e : events) absl::StrAppend(&out, out.empty() ? "" : " ", e);
    return out;
  }

  // Recorded calls, oldest first.
  std::vector<std::string> events;
  // Started rings' current configuration (holding their SharedFds).
  std::map<uint32_t, RingConfig> running;
  std::map<uint32_t, std::shared_ptr<const MemoryTable>> ring_memory;
  // The last table from OnMemoryTableChanged.
  std::shared_ptr<const MemoryTable> memory;
  // What OnRingStopped returns for each ring.
  std::map<uint32_t, uint16_t> next_avail;
  bool refuse_features = false;
  bool config_writable = false;

 private:
  uint32_t num_queues_;
  uint64_t features_;
  std::vector<uint8_t> config_;
};

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_RECORDING_DEVICE_H_
