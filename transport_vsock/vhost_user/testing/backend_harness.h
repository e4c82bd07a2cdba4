// File: transport_vsock/vhost_user/testing/backend_harness.h
//
// BackendHarness: a Backend wired to a device (a RecordingDevice unless the
// test brings its own DeviceHooks, e.g. a real VsockDevice) and a
// ScriptedFrontend over a socketpair, with memfd guest RAM laid out like
// QEMU's q35 machine and eventfds for kicks and calls. Tests and the fuzzer
// drive it step by step; the harness itself asserts nothing (environment
// errors CHECK-fail). Test-only.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_BACKEND_HARNESS_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_BACKEND_HARNESS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/recording_device.h"
#include "transport_vsock/vhost_user/testing/resources.h"
#include "transport_vsock/vhost_user/testing/scripted_frontend.h"

namespace vrpc {
namespace vhost_user {
namespace testing {

// What QEMU 7.2 acks in SET_FEATURES (FACTS.md §0):
// VERSION_1 | PROTOCOL_FEATURES | EVENT_IDX | INDIRECT_DESC.
inline constexpr uint64_t kQemuAckedFeatures = 0x170000000ull;
// QEMU's vhost-user-vsock queue size.
inline constexpr uint32_t kQemuRingSize = 128;

class BackendHarness {
 public:
  struct Options {
    uint32_t num_queues = 3;
    BackendOptions backend;
    uint64_t ram_size = 4 * 1024 * 1024;
    // The device the Backend drives. Null: the harness makes and owns a
    // RecordingDevice(num_queues). Otherwise not owned; it must outlive the
    // harness (whose destructor ends the session through it).
    DeviceHooks* device = nullptr;
  };

  BackendHarness();
  explicit BackendHarness(Options options);
  ~BackendHarness();
  BackendHarness(const BackendHarness&) = delete;
  BackendHarness& operator=(const BackendHarness&) = delete;

  // The harness's own RecordingDevice; CHECK-fails when Options::device
  // was given.
  RecordingDevice& device();
  // The device the Backend drives, whichever it is.
  DeviceHooks& hooks() { return *hooks_; }
  Backend& backend() { return *backend_; }
  ScriptedFrontend& frontend() { return frontend_; }
  FakeGuestRam& ram() { return *ram_; }

  // Ends the session (Disconnect) and attaches a fresh socketpair.
  void Reconnect();

  // Calls HandleReadable() until nothing is readable or it fails; returns
  // the first error (the session has then ended), else OK.
  absl::Status Pump();

  // Sends, pumps, and reads one reply (nullopt if none came).
  std::optional<Reply> Call(uint32_t request, uint32_t flags,
                            const std::vector<uint8_t>& payload);
  // The u64 of a GET_* reply, or nullopt if the reply is missing/malformed
  // (wrong request, flags != 0x5, size != 8).
  std::optional<uint64_t> GetU64(uint32_t request);

  // The q35-like layout used throughout: [0, 640 KiB) at guest 0 and
  // [768 KiB, ram_size) at guest 768 KiB, both from the one memfd; frontend
  // user addresses are FakeGuestRam::UserAddr(file offset).
  std::vector<MemoryRegionDesc> QemuRegions() const;
  // Sends SET_MEM_TABLE for |regions|, one duplicate of the RAM memfd each
  // (|fd_count| overrides the number of descriptors attached).
  void SendMemTable(const std::vector<MemoryRegionDesc>& regions,
                    uint32_t flags, int fd_count = -1);
  // Ring |index| at guest/file offset 0x100000 + index * 0x4000: descriptor
  // table, then avail at +0x800, used at +0x1000 (room for 128 entries).
  static uint64_t RingGuestAddr(uint32_t index) { return 0x100000 + index * 0x4000; }
  static VringAddress RingAddress(uint32_t index);

  // The eventfds the frontend side owns (created before any test baseline).
  int kick_fd(uint32_t i) const { return kick_[i].get(); }
  int call_fd(uint32_t i) const { return call_[i].get(); }
  int err_fd(uint32_t i) const { return err_[i].get(); }
  int spare_fd(uint32_t i) const { return spare_[i].get(); }

  // QEMU 7.2's start-up (FACTS.md §0) up to and including SET_FEATURES,
  // with |protocol_features| acked; replies are read and discarded. False if
  // any step failed.
  bool QemuInit(uint64_t protocol_features = 0x209);
  // Per ring 0..n-1: NUM(128), BASE(0), ADDR, KICK (after SET_MEM_TABLE).
  void QemuStartRings(uint32_t n);

 private:
  Options options_;
  std::unique_ptr<FakeGuestRam> ram_;
  std::vector<UniqueFd> kick_, call_, err_, spare_;
  std::unique_ptr<RecordingDevice> device_;  // null with Options::device
  DeviceHooks* hooks_ = nullptr;
  std::unique_ptr<Backend> backend_;
  ScriptedFrontend frontend_{UniqueFd()};
};

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_BACKEND_HARNESS_H_
