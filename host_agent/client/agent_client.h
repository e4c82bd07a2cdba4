// File: host_agent/client/agent_client.h
//
// AgentClient: the C++ API for calling a guest agent over vrpc (no gRPC):
// embed it in an orchestrator written in C++, or use the C ABI (vrpc.h)
// built on it. Reach a guest by any address of docs/addresses.md: the
// host agent's hybrid socket (hvsock:/run/vm1.sock:1024), a Firecracker
// VM's, or vrpc's own device in process (vhost-user:...).
//
//   auto client = AgentClient::Connect("hvsock:/run/vm1.sock:1024");
//   auto run = (*client)->Run({"uname", "-a"});     // stdout, stderr, exit
//   (*client)->PutFile("/tmp/a", "/root/a", true, nullptr);
//
// Threading: thread-safe; calls block (not for a reactor thread).
#ifndef VRPC_HOST_AGENT_CLIENT_AGENT_CLIENT_H_
#define VRPC_HOST_AGENT_CLIENT_AGENT_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/channel.h"
#include "host_agent/client/agent_ops.h"
#include "proto/agent/agent.pb.h"

namespace vrpc {
namespace agent_client {

struct CapturedRun {
  ExecResult status;
  std::string stdout_bytes;
  std::string stderr_bytes;
};

class AgentClient {
 public:
  // Dials |address| on a loop thread of its own. Errors as dial::Dial.
  // |timeout| bounds each call (infinite: none).
  static absl::StatusOr<std::unique_ptr<AgentClient>> Connect(
      const std::string& address, absl::Duration timeout = absl::InfiniteDuration());
  // Over an existing channel (which outlives nothing here).
  explicit AgentClient(std::shared_ptr<rpc::Channel> channel,
                       absl::Duration timeout = absl::InfiniteDuration());
  ~AgentClient();

  // Runs |argv| with |input| as stdin (unless null); output to callbacks.
  absl::StatusOr<ExecResult> Exec(const std::vector<std::string>& argv, const Input& input,
                                  const Output& on_stdout, const Output& on_stderr);
  // Runs |argv| with |stdin_bytes| and collects its output (bounded by
  // |max_output| bytes per stream: RESOURCE_EXHAUSTED beyond).
  absl::StatusOr<CapturedRun> Run(const std::vector<std::string>& argv,
                                  const std::string& stdin_bytes = "",
                                  size_t max_output = 64 << 20);
  absl::Status PutFile(const std::string& local, const std::string& remote, bool overwrite,
                       const Progress& progress);
  absl::Status GetFile(const std::string& remote, const std::string& local,
                       const Progress& progress);
  absl::StatusOr<agent::SystemInfoResponse> SystemInfo();
  absl::StatusOr<agent::FileInfo> Stat(const std::string& path);
  absl::StatusOr<agent::ListResponse> List(const std::string& path);
  // grpc.health.v1 Check of the whole agent: true when SERVING.
  absl::StatusOr<bool> Healthy();
  absl::Status Shutdown(agent::ShutdownRequest::Mode mode);

  rpc::Channel& channel() { return *channel_; }

 private:
  struct Traits;
  std::unique_ptr<io::EventLoopThread> loop_;  // when Connect made one
  std::shared_ptr<rpc::Channel> channel_;
  const absl::Duration timeout_;
};

}  // namespace agent_client
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_CLIENT_AGENT_CLIENT_H_
