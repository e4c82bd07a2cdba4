// File: host_agent/options.h
//
// The host agent's command line, compatible with rust-vmm's
// vhost-device-vsock:
//
//   host_agent --guest-cid 3 --socket /run/vm1.vsock --uds-path /run/vm1.sock
//   host_agent --vm guest-cid=3,socket=/run/vm1.vsock,uds-path=/run/vm1.sock
//              --vm guest-cid=4,socket=/run/vm2.vsock,uds-path=/run/vm2.sock
//
// Flags may be written "--flag value" or "--flag=value". Pure parsing.
#ifndef VRPC_HOST_AGENT_OPTIONS_H_
#define VRPC_HOST_AGENT_OPTIONS_H_

#include <cstdint>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transport_vsock/device/vm_server.h"

namespace vrpc {
namespace host_agent {

// One VM served by the agent.
using VmSpec = vsock::VmSpec;

struct Options {
  std::vector<VmSpec> vms;
  // Names of the VMs above (by guest CID) for the gateway and vrpcctl;
  // "vm<CID>" unless given (--vm name=..., --name).
  std::map<uint64_t, std::string> vm_names;
  // Guest agents this host agent does not serve the device of, reached at
  // an address (--guest NAME=ADDRESS, e.g. hvsock:/run/fc1.sock:1024).
  std::vector<std::pair<std::string, std::string>> guests;
  // The guest agent's vsock port in the VMs served here (--agent-port).
  uint32_t agent_port = 1024;
  // Unix socket of the gRPC gateway (--gateway); empty: no gateway.
  std::string gateway;
  bool help = false;
};

// Parses |args| (without argv[0]). Either the single-VM flags (all three of
// --guest-cid, --socket, --uds-path) or one or more --vm specs, not both.
// Returns kInvalidArgument naming the offending flag for unknown flags,
// missing values, bad or reserved CIDs, duplicate CIDs or paths.
absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args);

// The usage text.
std::string Usage();

}  // namespace host_agent
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_OPTIONS_H_
