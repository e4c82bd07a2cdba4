// File: tests/agent/gateway_e2e_test.cc
//
// The host agent's gRPC gateway end to end: a grpc++ client (the generated
// gRPC stubs of proto/agent, nothing of vrpc's RPC layer) calls the guest
// agent of agent_processes.h through the gateway's Unix socket with
// "vrpc-vm: vm1": every call kind (unary, bidi exec, client- and
// server-streaming 16 MiB copies with SHA-256 checked), and the gateway's
// and the guest's errors as gRPC statuses.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/sha256.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "host_agent/client/agent_ops.h"
#include "proto/agent/agent.grpc.pb.h"
#include "tests/agent/agent_processes.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;
using agent_test::AgentProcesses;
using agent_test::ReadFile;
using agent_test::WriteRandomFile;

constexpr uint64_t k16MiB = 16 << 20;

// The gRPC stub's traits for agent_ops (through the gateway).
struct GatewayTraits {
  using Stub = agent::Agent::Stub;
  using Context = grpc::ClientContext;
  std::string vm;
  std::unique_ptr<Context> NewContext() const {
    auto ctx = std::make_unique<Context>();
    ctx->AddMetadata("vrpc-vm", vm);
    return ctx;
  }
  static absl::Status ToStatus(const grpc::Status& s) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
};

class GatewayE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = AgentProcesses::Start();
    ASSERT_TRUE(p.ok()) << p.status();
    processes_ = p->release();
  }
  static void TearDownTestSuite() { delete processes_; }
  void SetUp() override {
    ASSERT_NE(processes_, nullptr);
    channel_ = grpc::CreateChannel(processes_->gateway_target(), grpc::InsecureChannelCredentials());
    gateway_ = agent::Agent::NewStub(channel_);
  }
  std::string dir() const { return processes_->dir(); }

  static AgentProcesses* processes_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<agent::Agent::Stub> gateway_;
};

AgentProcesses* GatewayE2eTest::processes_ = nullptr;

TEST_F(GatewayE2eTest, GatewayForwardsEveryCallKind) {
  // Unary.
  grpc::ClientContext ctx;
  ctx.AddMetadata("vrpc-vm", "vm1");
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  agent::SystemInfoResponse info;
  grpc::Status s = gateway_->SystemInfo(&ctx, agent::SystemInfoRequest(), &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(info.kernel(), ::testing::StartsWith("Linux "));
  EXPECT_GT(info.memory_total_bytes(), 0u);
  EXPECT_EQ(info.load_size(), 3);
  // Bidi (exec) and the streams of a 16 MiB copy in and out.
  GatewayTraits traits{"vm1"};
  std::string out;
  auto run = agent_client::Exec(traits, *gateway_, {"uname", "-a"}, nullptr,
                                [&](const std::string& b) { out += b; }, nullptr);
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->exit_code, 0);
  EXPECT_THAT(out, ::testing::StartsWith("Linux "));
  const std::string local = dir() + "/gw.in";
  WriteRandomFile(local, k16MiB, 2);
  const std::string remote = dir() + "/gw-guest";
  VRPC_ASSERT_OK(agent_client::PutFile(traits, *gateway_, local, remote, true, nullptr));
  const std::string back = dir() + "/gw.out";
  VRPC_ASSERT_OK(agent_client::GetFile(traits, *gateway_, remote, back, nullptr));
  EXPECT_EQ(Sha256::Of(ReadFile(back)), Sha256::Of(ReadFile(local)));
}

TEST_F(GatewayE2eTest, GatewayErrorsAreGrpcStatuses) {
  agent::SystemInfoResponse info;
  grpc::ClientContext no_vm;
  EXPECT_EQ(gateway_->SystemInfo(&no_vm, agent::SystemInfoRequest(), &info).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext unknown;
  unknown.AddMetadata("vrpc-vm", "vm9");
  grpc::Status s = gateway_->SystemInfo(&unknown, agent::SystemInfoRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("vm1"));
  // The guest's policy answers through the gateway unchanged.
  grpc::ClientContext denied;
  denied.AddMetadata("vrpc-vm", "vm1");
  agent::ShutdownResponse r;
  EXPECT_EQ(gateway_->Shutdown(&denied, agent::ShutdownRequest(), &r).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace vrpc
