// File: transport_vsock/device/testing/host_harness.h
//
// HostHarness: a VsockHost whose "guest" is a second protocol engine in the
// same process (standing in for the virtqueues), on a manual-clock reactor.
// Settle() moves packets both ways and runs reactor work until nothing is
// left, so tests are deterministic.
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_TESTING_HOST_HARNESS_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_TESTING_HOST_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/io/manual_reactor.h"
#include "transport_vsock/device/vsock_host.h"
#include "transport_vsock/protocol/engine.h"

namespace vrpc {
namespace vsock {
namespace testing {

inline constexpr uint64_t kGuestCid = 3;

// A deterministic byte pattern; different seeds differ everywhere.
std::string Pattern(size_t n, int seed);

class HostHarness {
 public:
  HostHarness() = default;
  ~HostHarness();

  // Creates the host (with |uds_path| if non-empty) and the guest engine.
  absl::Status Start(const std::string& uds_path, EngineConfig guest = EngineConfig());
  // Destroys the host now (the guest engine stays).
  void StopHost() { host_.reset(); }

  // Moves packets both ways and runs reactor work until idle. False if it
  // never settled (a livelock).
  bool Settle();

  // Whether the guest engine reported |type| for |id|.
  bool GuestHas(ConnId id, EventType type) const;

  VsockHost& host() { return *host_; }
  Engine& guest() { return *guest_; }
  Actions& guest_out() { return guest_out_; }
  io::ManualReactor& reactor() { return reactor_; }
  absl::Time now() { return reactor_.Now(); }

 private:
  class QueueSink : public PacketSink {
   public:
    void SendToPeer(std::vector<Packet>& packets) override;
    std::deque<Packet> queue;
  };
  bool DeliverGuestOutput();

  io::ManualReactor reactor_;
  QueueSink sink_;
  std::unique_ptr<VsockHost> host_;
  std::unique_ptr<Engine> guest_;
  Actions guest_out_;
  std::vector<Event> guest_events_;
};

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_TESTING_HOST_HARNESS_H_
