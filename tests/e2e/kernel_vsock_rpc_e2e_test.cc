// End to end: vrpc's RPC stack over the Linux guest kernel's AF_VSOCK, in one
// QEMU TCG guest shared by every test here (boots are slow). The guest has
// both vsock transports: vsock_loopback (CID 1) and the virtio transport on
// QEMU's vhost-user-vsock-pci, attached to vrpc's device (VmServer, in this
// process, as the host agent runs it; guest CID 3). The guest runs
// guest/rpc_agent_guest.sh with static builds of //examples/echo:server,
// :client and //guest_agent:
//
//   issue 6  the echo suite (unary, server-stream, client-stream, bidi, each
//            reply checked) inside the guest over vsock_loopback
//            (vsock:1:5000), and from this host through the device's hybrid
//            socket (hvsock:<uds>:5000) with //examples/echo:client;
//   issue 7  the agent API from this host through the hybrid socket
//            (AgentClient, hvsock:<uds>:1024): Healthy, exec `uname -a`,
//            16 MiB into the guest's /tmp and back with SHA-256 compared;
//            and the agent refusing a peer whose CID is not the host's
//            (CID 1, from inside the guest).
//
// The tests run in the order written; the last one ends the guest (through
// the agent) and checks that the servers exited cleanly. AF_VSOCK is used
// only inside the guest; this host speaks AF_UNIX to the device.
#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/sha256.h"
#include "core/base/status_macros.h"
#include "core/base/status_matchers.h"
#include "core/io/uring_reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host_agent/client/agent_client.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/qemu_guest.h"
#include "transport_vsock/device/vm_server.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t k16MiB = 16 << 20;
constexpr char kReady[] = "VRPC-GUEST-READY";
constexpr char kPolicy[] =
    "allow Exec\n"
    "allow PutFile\n"
    "allow GetFile\n"
    "allow Stat\n"
    "allow SystemInfo\n"
    "allow-cid 2\n"
    "limit max_file_bytes 33554432\n";

std::string RandomBytes(uint64_t size, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  return data;
}

// One guest for the suite: the device, its reactor thread and QEMU.
struct SharedGuest {
  std::string dir;
  vsock::VmSpec spec;
  std::unique_ptr<io::UringReactor> reactor;
  std::unique_ptr<vsock::VmServer> server;
  std::thread loop;
  std::unique_ptr<e2e::QemuGuest> guest;
  absl::Status boot = absl::UnknownError("not booted");

  absl::Status Start() {
    VRPC_RETURN_IF_ERROR(e2e::CheckGuestEnvironment());
    VRPC_ASSIGN_OR_RETURN(dir, e2e::MakeSocketDir());
    spec.guest_cid = 3;
    spec.socket = dir + "/vm.vsock";
    spec.uds_path = dir + "/vm.sock";
    VRPC_ASSIGN_OR_RETURN(reactor, io::UringReactor::Create());
    VRPC_ASSIGN_OR_RETURN(server, vsock::VmServer::Create(spec, *reactor));
    loop = std::thread([this] {
      absl::Status s = reactor->Run();
      if (!s.ok()) std::fprintf(stderr, "reactor: %s\n", s.ToString().c_str());
    });

    e2e::GuestOptions options;
    options.name = "rpc-agent";
    options.memory_mb = 512;  // /tmp (the initramfs) holds the 16 MiB copy
    options.cpus = 2;
    options.timeout = absl::Seconds(400);
    options.extra_qemu_args = {"-chardev", "socket,id=vu,path=" + spec.socket, "-device",
                               "vhost-user-vsock-pci,chardev=vu"};
    for (const char* name : {"echo_server", "echo_client", "guest_agent"}) {
      VRPC_ASSIGN_OR_RETURN(std::string path,
                            e2e::Runfile(absl::StrCat("tests/e2e/guest/", name)));
      VRPC_ASSIGN_OR_RETURN(bool is_static, e2e::IsStaticElf(path));
      if (!is_static) return absl::FailedPreconditionError(path + " is not static");
      options.payload.files.push_back(
          e2e::GuestFile{absl::StrCat("/payload/", name), path, "", 0755});
    }
    VRPC_ASSIGN_OR_RETURN(std::string script,
                          e2e::Runfile("tests/e2e/guest/rpc_agent_guest.sh"));
    options.payload.files.push_back(e2e::GuestFile{"/payload/rpc_agent_guest.sh", script, "", 0755});
    options.payload.files.push_back(e2e::GuestFile{"/payload/agent.policy", "", kPolicy, 0644});
    options.payload.argv = {"/bin/sh", "/payload/rpc_agent_guest.sh"};
    VRPC_ASSIGN_OR_RETURN(guest, e2e::QemuGuest::Start(std::move(options)));
    return guest->WaitForConsole(kReady, absl::Seconds(240));
  }

  void Stop() {
    guest.reset();  // kills QEMU if it still runs
    if (loop.joinable()) {
      reactor->Stop();
      loop.join();
    }
    server.reset();
    reactor.reset();
    if (!dir.empty()) e2e::RemoveTree(dir);
  }
};

class KernelVsockRpcE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new SharedGuest;
    shared_->boot = shared_->Start();
  }
  static void TearDownTestSuite() {
    shared_->Stop();
    delete shared_;
    shared_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(shared_->boot.ok()) << "the guest did not get ready: " << shared_->boot;
  }

  static std::string Hybrid(int port) {
    return absl::StrCat("hvsock:", shared_->spec.uds_path, ":", port);
  }

  static absl::StatusOr<std::unique_ptr<agent_client::AgentClient>> ConnectAgent() {
    VRPC_ASSIGN_OR_RETURN(auto client,
                          agent_client::AgentClient::Connect(Hybrid(1024), absl::Seconds(120)));
    if (!client->channel().WaitForReady(absl::Now() + absl::Seconds(60))) {
      return absl::UnavailableError(
          absl::StrCat("agent not ready: ", client->channel().state_info().last_error.ToString()));
    }
    return client;
  }

  static SharedGuest* shared_;
};

SharedGuest* KernelVsockRpcE2eTest::shared_ = nullptr;

// Issue 6, inside the guest: every mode over vsock_loopback, CID 1.
TEST_F(KernelVsockRpcE2eTest, EchoSuiteInsideTheGuestOverVsockLoopback) {
  const std::string console = shared_->guest->console();
  for (const char* name : {"unary", "server-stream", "client-stream", "bidi"}) {
    EXPECT_THAT(console, HasSubstr(absl::StrCat("PASS guest-echo ", name, "\n")));
    EXPECT_THAT(console,
                HasSubstr(absl::StrCat("echo ", name, " to vsock:1:5000: 50 x 3000 B, 50 ok, "
                                       "0 failed")));
  }
  EXPECT_THAT(console, HasSubstr("PASS guest-echo unary-1MB"));
  EXPECT_THAT(console, HasSubstr("echo unary to vsock:1:5000: 3 x 1000000 B, 3 ok, 0 failed"));
  EXPECT_THAT(console, ::testing::Not(HasSubstr("FAIL ")));
}

// Issue 6, from the host: the same suite through the hybrid socket, the
// device and the guest's virtio-vsock driver.
TEST_F(KernelVsockRpcE2eTest, EchoSuiteFromTheHostThroughTheHybridSocket) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::string client, e2e::Runfile("examples/echo/client"));
  struct Case {
    std::string mode;
    int count, size;
  };
  const std::vector<Case> cases = {{"unary", 50, 3000},
                                   {"server-stream", 50, 3000},
                                   {"client-stream", 50, 3000},
                                   {"bidi", 50, 3000},
                                   {"unary", 3, 1000000}};
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.mode, " ", c.count, " x ", c.size));
    VRPC_ASSERT_OK_AND_ASSIGN(
        e2e::CommandResult r,
        e2e::RunCommand({client, "--target=" + Hybrid(5000), "--mode=" + c.mode,
                         absl::StrCat("--count=", c.count), absl::StrCat("--size=", c.size),
                         "--timeout=60s"}));
    std::fprintf(stderr, "%s%s", r.out.c_str(), r.err.c_str());
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("echo ", c.mode, " to ", Hybrid(5000), ": ",
                                              c.count, " x ", c.size, " B, ", c.count,
                                              " ok, 0 failed")));
  }
}

// Issue 7: the agent API from the host through the hybrid socket.
TEST_F(KernelVsockRpcE2eTest, AgentExecsUnameInTheGuest) {
  VRPC_ASSERT_OK_AND_ASSIGN(auto agent, ConnectAgent());
  auto healthy = agent->Healthy();
  ASSERT_THAT(healthy, IsOk());
  EXPECT_TRUE(*healthy);
  auto run = agent->Run({"uname", "-a"});
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->status.exit_code, 0) << run->stderr_bytes;
  EXPECT_THAT(run->stdout_bytes, StartsWith("Linux "));
  std::fprintf(stderr, "guest: %s", run->stdout_bytes.c_str());
  auto info = agent->SystemInfo();
  ASSERT_THAT(info, IsOk());
}

TEST_F(KernelVsockRpcE2eTest, AgentCopies16MiBInAndOutWithChecksum) {
  VRPC_ASSERT_OK_AND_ASSIGN(auto agent, ConnectAgent());
  VRPC_ASSERT_OK_AND_ASSIGN(std::string tmp, e2e::MakeTempDir("agent-copy"));
  const std::string local = tmp + "/big.in";
  const std::string data = RandomBytes(k16MiB, 7);
  VRPC_ASSERT_OK(e2e::WriteStringToFile(local, data));
  uint64_t last_progress = 0;
  VRPC_ASSERT_OK(agent->PutFile(local, "/tmp/big", /*overwrite=*/true,
                                [&](uint64_t done, uint64_t total) {
                                  EXPECT_EQ(total, k16MiB);
                                  last_progress = done;
                                }));
  EXPECT_EQ(last_progress, k16MiB);
  auto stat = agent->Stat("/tmp/big");
  ASSERT_THAT(stat, IsOk());
  EXPECT_EQ(stat->size(), k16MiB);
  // The guest's own view of the file: its checksum there, too.
  auto sum = agent->Run({"sha256sum", "/tmp/big"});
  ASSERT_THAT(sum, IsOk());
  EXPECT_THAT(sum->stdout_bytes, StartsWith(Sha256::Hex(Sha256::Of(data))));

  const std::string back = tmp + "/big.out";
  VRPC_ASSERT_OK(agent->GetFile("/tmp/big", back, nullptr));
  VRPC_ASSERT_OK_AND_ASSIGN(std::string got, e2e::ReadFileToString(back));
  EXPECT_EQ(got.size(), k16MiB);
  EXPECT_EQ(Sha256::Of(got), Sha256::Of(data));
  e2e::RemoveTree(tmp);
}

// The guest dialled the agent from CID 1 (its own loopback) before getting
// ready; the policy allows CID 2 only.
TEST_F(KernelVsockRpcE2eTest, AgentRefusesAPeerThatIsNotTheHost) {
  const std::string console = shared_->guest->console();
  EXPECT_THAT(console, HasSubstr("PASS agent-refuses-cid1"));
  EXPECT_THAT(console, HasSubstr("refusing vsock:1:"));
}

// Last: the host tells the guest it is done (through the agent); the guest
// stops both servers, which must exit 0, and powers off.
TEST_F(KernelVsockRpcE2eTest, ZzGuestStopsItsServersCleanly) {
  VRPC_ASSERT_OK_AND_ASSIGN(auto agent, ConnectAgent());
  auto touched = agent->Run({"touch", "/tmp/host-done"});
  ASSERT_THAT(touched, IsOk());
  ASSERT_EQ(touched->status.exit_code, 0);
  agent.reset();
  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult r, shared_->guest->Wait());
  std::fprintf(stderr, "TIMING rpc_agent_guest: boot %s, payload %s, total %s\n",
               absl::FormatDuration(r.boot_time).c_str(),
               absl::FormatDuration(r.payload_time).c_str(),
               absl::FormatDuration(r.total_time).c_str());
  EXPECT_EQ(r.exit_code, 0) << r.payload_output;
  EXPECT_THAT(r.payload_output, HasSubstr("PASS echo-server-exit"));
  EXPECT_THAT(r.payload_output, HasSubstr("PASS guest-agent-exit"));
}

}  // namespace
}  // namespace vrpc
