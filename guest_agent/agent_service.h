// File: guest_agent/agent_service.h
//
// AgentService: vrpc.agent.Agent (proto/agent/agent.proto) as the guest
// sees it: runs programs, moves files, reports the system, powers off,
// forwards TCP. Which methods may run at all is the Server's business
// (Policy via ServerOptions::authorize); this class enforces the limits
// (file sizes, list lengths, concurrent programs) and treats every request
// as untrusted: bad input is a clear status, never a crash or unbounded
// memory.
//
// One file per concern: exec.cc, files.cc, system.cc, forward.cc.
// Handlers run on the server's worker threads and block.
#ifndef VRPC_GUEST_AGENT_AGENT_SERVICE_H_
#define VRPC_GUEST_AGENT_AGENT_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "guest_agent/policy.h"
#include "proto/agent/agent.pb.h"
#include "proto/agent/agent.vrpc.pb.h"

namespace vrpc {
namespace guest_agent {

struct AgentOptions {
  Limits limits;
  // What Shutdown does after answering, with the requested mode. Default:
  // sync() and reboot(2) (power off or restart the guest).
  std::function<void(agent::ShutdownRequest::Mode)> power;
  std::string version = "vrpc-guest-agent 0.1";
};

class AgentService final : public agent::Agent::Service {
 public:
  explicit AgentService(AgentOptions options);

  absl::Status Exec(rpc::ServerContext* context,
                    rpc::ServerReaderWriter<agent::ExecResponse, agent::ExecRequest>* stream)
      override;
  absl::Status PutFile(rpc::ServerContext* context,
                       rpc::ServerReader<agent::PutFileRequest>* reader,
                       agent::PutFileResponse* response) override;
  absl::Status GetFile(rpc::ServerContext* context, const agent::GetFileRequest* request,
                       rpc::ServerWriter<agent::GetFileResponse>* writer) override;
  absl::Status Stat(rpc::ServerContext* context, const agent::StatRequest* request,
                    agent::FileInfo* response) override;
  absl::Status List(rpc::ServerContext* context, const agent::ListRequest* request,
                    agent::ListResponse* response) override;
  absl::Status SystemInfo(rpc::ServerContext* context, const agent::SystemInfoRequest* request,
                          agent::SystemInfoResponse* response) override;
  absl::Status Shutdown(rpc::ServerContext* context, const agent::ShutdownRequest* request,
                        agent::ShutdownResponse* response) override;
  absl::Status Forward(rpc::ServerContext* context,
                       rpc::ServerReaderWriter<agent::ForwardResponse, agent::ForwardRequest>* stream)
      override;

 private:
  const AgentOptions options_;
  std::atomic<uint32_t> running_programs_{0};
};

// The default AgentOptions::power: sync, then reboot(2).
void PowerOffOrReboot(agent::ShutdownRequest::Mode mode);

}  // namespace guest_agent
}  // namespace vrpc

#endif  // VRPC_GUEST_AGENT_AGENT_SERVICE_H_
