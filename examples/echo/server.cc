// File: examples/echo/server.cc
//
//   bazel run //examples/echo:server -- --listen=ADDR [--notify=MODE]
//
// Serves the Echo service (and grpc.health.v1) at ADDR, any address of
// docs/addresses.md a server can listen on, e.g.
//   vhost-user:/tmp/vm3.vsock:3:5000   vrpc's device for guest 3, port 5000
//   virtio-user:/tmp/vm3.vsock:any:5000  vrpc's guest driver, port 5000
//   unix:/tmp/echo.sock                a Unix socket
// Prints "echo server listening on ADDR" once it serves; SIGINT or SIGTERM
// shut it down gracefully (running calls get 5 s).
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/health/health_service.h"
#include "core/rpc/server.h"
#include "examples/echo/echo_service.h"
#include "transport_vsock/dial/dial.h"

ABSL_FLAG(std::string, listen, "", "address to serve, e.g. vhost-user:/tmp/vm3.vsock:3:5000");
ABSL_FLAG(std::string, notify, "interrupt",
          "userspace transports: interrupt, poll (busy-poll a core) or adaptive");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("serves vrpc.echo.Echo: --listen=ADDR [--notify=MODE]");
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_listen);
  if (address.empty()) {
    std::fprintf(stderr, "echo server: --listen=ADDR is required\n");
    return 2;
  }
  // Signals are taken by sigwait below, not by whichever thread they hit.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto loop = vrpc::io::EventLoopThread::Start("echo-server");
  if (!loop.ok()) {
    std::fprintf(stderr, "echo server: %s\n", loop.status().ToString().c_str());
    return 1;
  }
  vrpc::echo_example::EchoServiceImpl echo;
  vrpc::rpc::HealthService health;
  vrpc::rpc::Server server;
  if (!server.RegisterService(&echo).ok() || !server.RegisterService(&health).ok()) return 1;
  absl::Status listened;
  vrpc::dial::DialOptions options;
  options.notify_mode = absl::GetFlag(FLAGS_notify);
  (*loop)->RunSync([&] {
    auto listener = vrpc::dial::Listen(address, (*loop)->reactor(), options);
    if (!listener.ok()) {
      listened = listener.status();
      return;
    }
    server.AddListener(*std::move(listener));
  });
  if (!listened.ok()) {
    std::fprintf(stderr, "echo server: %s\n", listened.ToString().c_str());
    return absl::IsInvalidArgument(listened) ? 2 : 1;
  }
  std::printf("echo server listening on %s\n", address.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  std::fprintf(stderr, "echo server: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  health.Shutdown();
  server.Shutdown(absl::Now() + absl::Seconds(5));
  const vrpc::rpc::ServerStats stats = server.stats();
  std::fprintf(stderr, "echo server: %llu calls, %llu connections\n",
               static_cast<unsigned long long>(stats.calls_started),
               static_cast<unsigned long long>(stats.connections_accepted));
  return 0;
}
