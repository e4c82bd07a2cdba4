// File: host_agent/client/agent_client.cc
#include "host_agent/client/agent_client.h"

#include <utility>

#include "proto/agent/agent.vrpc.pb.h"
#include "proto/health/health.pb.h"
#include "proto/health/health.vrpc.pb.h"
#include "transport_vsock/dial/dial.h"

namespace vrpc {
namespace agent_client {

struct AgentClient::Traits {
  using Stub = agent::Agent::Stub;
  using Context = rpc::ClientContext;
  absl::Duration timeout;
  std::unique_ptr<Context> NewContext() const {
    auto ctx = std::make_unique<Context>();
    if (timeout != absl::InfiniteDuration()) ctx->set_timeout(timeout);
    return ctx;
  }
  static absl::Status ToStatus(const absl::Status& s) { return s; }
};

absl::StatusOr<std::unique_ptr<AgentClient>> AgentClient::Connect(const std::string& address,
                                                                  absl::Duration timeout) {
  auto loop = io::EventLoopThread::Start("agent-client");
  if (!loop.ok()) return loop.status();
  absl::StatusOr<std::unique_ptr<transport::Connector>> connector;
  (*loop)->RunSync([&] { connector = dial::Dial(address, (*loop)->reactor()); });
  if (!connector.ok()) return connector.status();
  auto client = std::make_unique<AgentClient>(rpc::Channel::Create(*std::move(connector)), timeout);
  client->loop_ = *std::move(loop);
  return client;
}

AgentClient::AgentClient(std::shared_ptr<rpc::Channel> channel, absl::Duration timeout)
    : channel_(std::move(channel)), timeout_(timeout) {}

AgentClient::~AgentClient() {
  if (loop_ != nullptr) {
    channel_->Shutdown();
    channel_.reset();  // off the loop thread
    loop_.reset();
  }
}

absl::StatusOr<ExecResult> AgentClient::Exec(const std::vector<std::string>& argv,
                                             const Input& input, const Output& on_stdout,
                                             const Output& on_stderr) {
  agent::Agent::Stub stub(channel_);
  return agent_client::Exec(Traits{timeout_}, stub, argv, input, on_stdout, on_stderr);
}

absl::StatusOr<CapturedRun> AgentClient::Run(const std::vector<std::string>& argv,
                                             const std::string& stdin_bytes, size_t max_output) {
  CapturedRun out;
  size_t sent = 0;
  Input input = [&](std::string* bytes) {
    if (sent >= stdin_bytes.size()) return false;
    *bytes = stdin_bytes.substr(sent, kChunk);  // under every message limit
    sent += bytes->size();
    return true;
  };
  bool overflow = false;
  auto collect = [&](std::string* into) {
    return [&, into](const std::string& bytes) {
      if (into->size() + bytes.size() > max_output) {
        overflow = true;
        return;
      }
      into->append(bytes);
    };
  };
  auto status = Exec(argv, stdin_bytes.empty() ? Input() : input, collect(&out.stdout_bytes),
                     collect(&out.stderr_bytes));
  if (!status.ok()) return status.status();
  if (overflow) return absl::ResourceExhaustedError("the program's output exceeds max_output");
  out.status = *status;
  return out;
}

absl::Status AgentClient::PutFile(const std::string& local, const std::string& remote,
                                  bool overwrite, const Progress& progress) {
  agent::Agent::Stub stub(channel_);
  return agent_client::PutFile(Traits{timeout_}, stub, local, remote, overwrite, progress);
}

absl::Status AgentClient::GetFile(const std::string& remote, const std::string& local,
                                  const Progress& progress) {
  agent::Agent::Stub stub(channel_);
  return agent_client::GetFile(Traits{timeout_}, stub, remote, local, progress);
}

absl::StatusOr<agent::SystemInfoResponse> AgentClient::SystemInfo() {
  agent::Agent::Stub stub(channel_);
  auto ctx = Traits{timeout_}.NewContext();
  agent::SystemInfoResponse r;
  if (absl::Status s = stub.SystemInfo(ctx.get(), agent::SystemInfoRequest(), &r); !s.ok()) {
    return s;
  }
  return r;
}

absl::StatusOr<agent::FileInfo> AgentClient::Stat(const std::string& path) {
  agent::Agent::Stub stub(channel_);
  auto ctx = Traits{timeout_}.NewContext();
  agent::StatRequest req;
  req.set_path(path);
  agent::FileInfo r;
  if (absl::Status s = stub.Stat(ctx.get(), req, &r); !s.ok()) return s;
  return r;
}

absl::StatusOr<agent::ListResponse> AgentClient::List(const std::string& path) {
  agent::Agent::Stub stub(channel_);
  auto ctx = Traits{timeout_}.NewContext();
  agent::ListRequest req;
  req.set_path(path);
  agent::ListResponse r;
  if (absl::Status s = stub.List(ctx.get(), req, &r); !s.ok()) return s;
  return r;
}

absl::StatusOr<bool> AgentClient::Healthy() {
  grpc::health::v1::Health::Stub stub(channel_);
  auto ctx = Traits{timeout_}.NewContext();
  grpc::health::v1::HealthCheckResponse r;
  if (absl::Status s = stub.Check(ctx.get(), grpc::health::v1::HealthCheckRequest(), &r);
      !s.ok()) {
    return s;
  }
  return r.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

absl::Status AgentClient::Shutdown(agent::ShutdownRequest::Mode mode) {
  agent::Agent::Stub stub(channel_);
  auto ctx = Traits{timeout_}.NewContext();
  agent::ShutdownRequest req;
  req.set_mode(mode);
  agent::ShutdownResponse r;
  return stub.Shutdown(ctx.get(), req, &r);
}

}  // namespace agent_client
}  // namespace vrpc
