// File: tests/agent/agent_e2e_test.cc
//
// The agent API end to end over vrpc's userspace datapath, in three
// processes (agent_processes.h): the host agent, the guest agent on vrpc's
// virtio-user guest driver, and this test as the orchestrator, calling the
// guest with AgentClient (vrpc, the C++ API) through the host agent's
// hybrid socket (hvsock:<uds>:1024). Exec `uname -a`, 16 MiB in and out
// with SHA-256 checked, stdin, limits and policy; and, in process over the
// loopback transport, a peer whose CID is not the host's is refused.
// gateway_e2e_test.cc does the same through the gRPC gateway.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/sha256.h"
#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "guest_agent/agent_service.h"
#include "guest_agent/policy.h"
#include "host_agent/client/agent_client.h"
#include "tests/agent/agent_processes.h"
#include "transport_vsock/dial/dial.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;
using agent_test::AgentProcesses;
using agent_test::ReadFile;
using agent_test::WriteRandomFile;

constexpr uint64_t k16MiB = 16 << 20;

class AgentE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = AgentProcesses::Start();
    ASSERT_TRUE(p.ok()) << p.status();
    processes_ = p->release();
  }
  static void TearDownTestSuite() { delete processes_; }

  void SetUp() override {
    ASSERT_NE(processes_, nullptr);
    auto client = agent_client::AgentClient::Connect(processes_->hybrid_address(),
                                                     absl::Seconds(60));
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
    ASSERT_TRUE(client_->channel().WaitForReady(absl::Now() + absl::Seconds(30)))
        << client_->channel().state_info().last_error;
  }
  std::string dir() const { return processes_->dir(); }

  static AgentProcesses* processes_;
  std::unique_ptr<agent_client::AgentClient> client_;
};

AgentProcesses* AgentE2eTest::processes_ = nullptr;

TEST_F(AgentE2eTest, ExecUnameThroughHybridSocket) {
  auto run = client_->Run({"uname", "-a"});
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->status.exit_code, 0);
  EXPECT_THAT(run->stdout_bytes, ::testing::StartsWith("Linux "));
  // stdin, stderr and a non-zero exit.
  auto cat = client_->Run({"sh", "-c", "cat; echo oops >&2; exit 3"}, "from the host\n");
  ASSERT_THAT(cat, IsOk());
  EXPECT_EQ(cat->stdout_bytes, "from the host\n");
  EXPECT_EQ(cat->stderr_bytes, "oops\n");
  EXPECT_EQ(cat->status.exit_code, 3);
  EXPECT_THAT(client_->Run({"/no/such/program"}).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/no/such/program")));
}

TEST_F(AgentE2eTest, Copy16MiBInAndOutWithChecksum) {
  const std::string local = dir() + "/big.in";
  WriteRandomFile(local, k16MiB, 1);
  const std::string remote = dir() + "/guest-big";  // the "guest" shares this machine
  uint64_t last_progress = 0;
  VRPC_ASSERT_OK(client_->PutFile(local, remote, /*overwrite=*/true,
                                  [&](uint64_t done, uint64_t total) {
                                    EXPECT_EQ(total, k16MiB);
                                    last_progress = done;
                                  }));
  EXPECT_EQ(last_progress, k16MiB);
  auto stat = client_->Stat(remote);
  ASSERT_THAT(stat, IsOk());
  EXPECT_EQ(stat->size(), k16MiB);
  const std::string back = dir() + "/big.out";
  VRPC_ASSERT_OK(client_->GetFile(remote, back, nullptr));
  EXPECT_EQ(Sha256::Of(ReadFile(back)), Sha256::Of(ReadFile(local)));
  // Without overwrite an existing file stays.
  EXPECT_THAT(client_->PutFile(local, remote, /*overwrite=*/false, nullptr),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(AgentE2eTest, LimitsGiveClearErrorsAndTheAgentKeepsServing) {
  const std::string local = dir() + "/too-big";
  WriteRandomFile(local, 24 << 20, 3);  // the policy allows 20 MB
  EXPECT_THAT(client_->PutFile(local, dir() + "/never", true, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("limit")));
  struct stat st;
  EXPECT_NE(::stat((dir() + "/never").c_str(), &st), 0) << "a refused file was left";
  // A message over the agent's 4 MiB limit fails that call only.
  EXPECT_THAT(client_->Stat("/" + std::string(5 << 20, 'x')).status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Large stdin goes in chunks.
  auto big = client_->Run({"wc", "-c"}, std::string(5 << 20, 'x'));
  ASSERT_THAT(big, IsOk());
  EXPECT_EQ(big->stdout_bytes, "5242880\n");
  EXPECT_THAT(client_->Shutdown(agent::ShutdownRequest::POWEROFF),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("Shutdown")));
  auto info = client_->SystemInfo();
  ASSERT_THAT(info, IsOk());
  EXPECT_THAT(client_->Healthy(), IsOkAndHolds(true));
}

// In process: the guest agent's server behind the loopback transport, where
// the connecting peer is the guest side (CID 3), not the host.
// In process: the guest agent's server behind the loopback transport, where
// the connecting peer is the guest side (CID 3), not the host.
TEST(AgentPolicyTest, PeersOtherThanTheHostAreRefused) {
  guest_agent::Policy policy;  // default: CID 2 only
  guest_agent::AgentOptions options;
  guest_agent::AgentService service(options);
  rpc::ServerOptions server_options;
  server_options.accept_peer = [&](const std::string& peer) { return policy.AcceptPeer(peer); };
  rpc::Server server(server_options);
  VRPC_ASSERT_OK(server.RegisterService(&service));
  auto loop = io::EventLoopThread::Start("policy");
  ASSERT_THAT(loop, IsOk());
  std::shared_ptr<rpc::Channel> channel;
  (*loop)->RunSync([&] {
    auto listener = dial::Listen("loopback:1024", (*loop)->reactor());
    ASSERT_THAT(listener, IsOk());
    server.AddListener(*std::move(listener));
    auto connector = dial::Dial("loopback:1024", (*loop)->reactor());
    ASSERT_THAT(connector, IsOk());
    channel = rpc::Channel::Create(*std::move(connector));
  });
  agent_client::AgentClient client(channel, absl::Seconds(5));
  EXPECT_FALSE(client.SystemInfo().ok());
  EXPECT_GE(server.stats().connections_refused, 1u);
  channel->Shutdown();
  server.Shutdown(absl::Now() + absl::Seconds(1));
}

}  // namespace
}  // namespace vrpc
