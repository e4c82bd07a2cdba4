// File: transport_vsock/driver/probe_options.h
//
// vsock_probe's command line (pure parsing):
//
//   vsock_probe --bus=virtio-user:PATH [flags] connect CID PORT BYTES
//   vsock_probe --bus=virtio-user:PATH [flags] serve PORT COUNT
//
//   vsock_probe --bus=uio:DDDD:BB:DD.F | vfio:DDDD:BB:DD.F [--bind] ...
//
// flags: --mode=interrupt|poll|adaptive  --rx-buffer-size=N
//        --queue-size=N  --timeout=SECONDS  --bind
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PROBE_OPTIONS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PROBE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace vsock {

enum class ProbeBusKind { kVirtioUser, kUio, kVfio };
enum class ProbeCommand { kConnect, kServe };

struct ProbeOptions {
  ProbeBusKind bus = ProbeBusKind::kVirtioUser;
  std::string bus_address;  // after "virtio-user:" etc.
  ProbeCommand command = ProbeCommand::kConnect;
  uint64_t cid = 0;     // connect
  uint32_t port = 0;    // connect: the host's; serve: ours
  uint64_t bytes = 0;   // connect
  uint64_t count = 0;   // serve
  DriverNotifyMode mode = DriverNotifyMode::kInterrupt;
  uint32_t rx_buffer_size = 64 * 1024;
  uint32_t queue_size = 256;
  absl::Duration timeout = absl::Seconds(60);
  bool help = false;
  // uio:/vfio: may rebind the PCI function to uio_pci_generic / vfio-pci.
  bool bind = false;
};

// Parses |args| (without argv[0]). kInvalidArgument naming the problem.
absl::StatusOr<ProbeOptions> ParseProbeOptions(const std::vector<std::string>& args);

std::string ProbeUsage();

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PROBE_OPTIONS_H_
