// File: guest_agent/main.cc
//
//   guest_agent [--listen=ADDR] [--policy=FILE] [--notify=MODE] [--power=reboot|log]
//
// The vrpc guest agent: serves vrpc.agent.Agent and grpc.health.v1 inside a
// guest. ADDR is any listening address (docs/addresses.md): by default the
// kernel's AF_VSOCK, vsock:any:1024; virtio-user:SOCK:any:PORT runs it on
// vrpc's userspace driver instead. Peers other than the host (CID 2) are
// refused and methods are default-deny (guest_agent/policy.h). SIGTERM or
// SIGINT: stop accepting, let running calls finish (10 s), exit 0.
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "core/base/logging.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/health/health_service.h"
#include "core/rpc/server.h"
#include "guest_agent/agent_service.h"
#include "guest_agent/policy.h"
#include "transport_vsock/dial/dial.h"

ABSL_FLAG(std::string, listen, "vsock:any:1024", "address to serve");
ABSL_FLAG(std::string, policy, "", "policy file (default: read-only methods, host CID only)");
ABSL_FLAG(std::string, notify, "interrupt", "userspace transports: interrupt, poll or adaptive");
ABSL_FLAG(std::string, power, "reboot",
          "what Shutdown does: reboot (reboot(2): power off or restart) or log (tests)");

namespace vrpc {
namespace guest_agent {
namespace {

int Main() {
  Policy policy;
  if (const std::string path = absl::GetFlag(FLAGS_policy); !path.empty()) {
    auto loaded = Policy::Load(path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "guest agent: %s\n", loaded.status().ToString().c_str());
      return 2;
    }
    policy = *std::move(loaded);
  }
  const std::string power = absl::GetFlag(FLAGS_power);
  if (power != "reboot" && power != "log") {
    std::fprintf(stderr, "guest agent: --power must be reboot or log\n");
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  AgentOptions options;
  options.limits = policy.limits();
  if (power == "log") {
    options.power = [](agent::ShutdownRequest::Mode mode) {
      VRPC_LOG(WARNING) << "--power=log: not "
                        << (mode == agent::ShutdownRequest::REBOOT ? "rebooting" : "powering off");
    };
  }
  AgentService agent(options);
  rpc::HealthService health;
  rpc::ServerOptions server_options;
  server_options.session.local.max_message_size =
      static_cast<uint32_t>(policy.limits().max_message_bytes);
  server_options.session.local.max_concurrent_streams = policy.limits().max_concurrent_calls;
  server_options.accept_peer = [&policy](const std::string& peer) {
    return policy.AcceptPeer(peer);
  };
  server_options.authorize = [&policy](const std::string& method, const std::string&) {
    return policy.Authorize(method);
  };
  rpc::Server server(server_options);
  if (!server.RegisterService(&agent).ok() || !server.RegisterService(&health).ok()) return 1;

  auto loop = io::EventLoopThread::Start("guest-agent");
  if (!loop.ok()) {
    std::fprintf(stderr, "guest agent: %s\n", loop.status().ToString().c_str());
    return 1;
  }
  const std::string address = absl::GetFlag(FLAGS_listen);
  dial::DialOptions dial_options;
  dial_options.notify_mode = absl::GetFlag(FLAGS_notify);
  absl::Status listened;
  (*loop)->RunSync([&] {
    auto listener = dial::Listen(address, (*loop)->reactor(), dial_options);
    if (!listener.ok()) {
      listened = listener.status();
      return;
    }
    server.AddListener(*std::move(listener));
  });
  if (!listened.ok()) {
    std::fprintf(stderr, "guest agent: %s\n", listened.ToString().c_str());
    return absl::IsInvalidArgument(listened) ? 2 : 1;
  }
  std::printf("guest agent serving on %s\n", address.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  VRPC_LOG(INFO) << "guest agent: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", shutting down";
  health.Shutdown();
  server.Shutdown(absl::Now() + absl::Seconds(10));
  return 0;
}

}  // namespace
}  // namespace guest_agent
}  // namespace vrpc

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the vrpc guest agent: --listen=ADDR [--policy=FILE] [--notify=MODE] [--power=reboot|log]");
  absl::ParseCommandLine(argc, argv);
  return vrpc::guest_agent::Main();
}
