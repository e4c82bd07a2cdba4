// File: tests/agent/agent_processes.h
//
// The processes of the agent end-to-end tests: the host agent (vrpc's
// vhost-user vsock device for guest 3 named vm1, its hybrid socket, its
// gRPC gateway) and the guest agent on vrpc's virtio-user guest driver
// attached to that device, under a test policy (everything but Shutdown
// and Forward; files up to 20 MB). Started once per test binary.
#ifndef VRPC_TESTS_AGENT_AGENT_PROCESSES_H_
#define VRPC_TESTS_AGENT_AGENT_PROCESSES_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "tests/virtio_user/harness.h"

namespace vrpc {
namespace agent_test {

class AgentProcesses {
 public:
  // Starts both and waits for their sockets.
  static absl::StatusOr<std::unique_ptr<AgentProcesses>> Start();

  const std::string& dir() const { return dir_.path(); }
  std::string hybrid_address() const { return "hvsock:" + dir() + "/vm.sock:1024"; }
  std::string gateway_target() const { return "unix:" + dir() + "/gw.sock"; }

 private:
  AgentProcesses() = default;
  virtio_user_test::TempDir dir_;
  std::unique_ptr<virtio_user_test::ChildProcess> host_, guest_;
};

// |size| pseudo-random bytes (from |seed|) written to |path|.
void WriteRandomFile(const std::string& path, uint64_t size, uint32_t seed);
std::string ReadFile(const std::string& path);

}  // namespace agent_test
}  // namespace vrpc

#endif  // VRPC_TESTS_AGENT_AGENT_PROCESSES_H_
