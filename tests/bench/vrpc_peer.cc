// File: tests/bench/vrpc_peer.cc
//
// The vrpc process of the comparison (spawned by compare.cc):
//   vrpc_peer --role=server --listen=ADDR [--notify=MODE] [--workers=N]
//             [--inline_unary=false] [--loop_cpu=N]
//       serves Bench at ADDR; prints "ready ADDR" (or "error STATUS" and
//       exits 1), then serves until SIGTERM/SIGINT.
//   vrpc_peer --role=client --target=ADDR [--notify=MODE]
//       runs the memory workload (rss_workload.h) and prints
//       "ready rss_kb=N hwm_kb=N" for itself; exit 1 if a call failed.
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/server.h"
#include "tests/bench/affinity.h"
#include "tests/bench/bench_service.h"
#include "tests/bench/child_process.h"
#include "tests/bench/rss_workload.h"
#include "tests/bench/vrpc_client.h"
#include "transport_vsock/dial/dial.h"

ABSL_FLAG(std::string, role, "server", "server or client");
ABSL_FLAG(std::string, listen, "", "server: address to serve");
ABSL_FLAG(std::string, target, "", "client: address to call");
ABSL_FLAG(std::string, notify, "interrupt", "interrupt, poll or adaptive");
ABSL_FLAG(int, workers, 1, "server: handler threads");
ABSL_FLAG(int, loop_cpu, -1, "server: pin the loop thread to this CPU (-1: no pinning)");
ABSL_FLAG(bool, inline_unary, true,
          "server: run the unary handlers (Echo, Sink) on the reactor, not a worker");
ABSL_FLAG(bool, reactor_streaming, true,
          "server: serve StreamSink with a reactor on the reactor thread, not a worker");

namespace vrpc {
namespace bench {
namespace {

int Serve() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto loop = io::EventLoopThread::Start("bench-server");
  if (!loop.ok()) {
    std::printf("error %s\n", loop.status().ToString().c_str());
    return 1;
  }
  if (const int cpu = absl::GetFlag(FLAGS_loop_cpu); cpu >= 0 && !PinLoopThread(**loop, cpu)) {
    std::printf("error could not pin the loop to CPU %d\n", cpu);
    return 1;
  }
  BenchServiceImpl service(absl::GetFlag(FLAGS_inline_unary),
                           absl::GetFlag(FLAGS_reactor_streaming));
  rpc::ServerOptions server_options;
  server_options.max_worker_threads = static_cast<size_t>(absl::GetFlag(FLAGS_workers));
  rpc::Server server(server_options);
  if (!server.RegisterService(&service).ok()) return 1;
  dial::DialOptions options;
  options.notify_mode = absl::GetFlag(FLAGS_notify);
  const std::string address = absl::GetFlag(FLAGS_listen);
  absl::Status listened;
  (*loop)->RunSync([&] {
    auto listener = dial::Listen(address, (*loop)->reactor(), options);
    if (!listener.ok()) {
      listened = listener.status();
      return;
    }
    server.AddListener(*std::move(listener));
  });
  if (!listened.ok()) {
    std::printf("error %s\n", listened.ToString().c_str());
    std::fflush(stdout);
    return 1;
  }
  std::printf("ready %s\n", address.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.Shutdown(absl::Now() + absl::Seconds(2));
  return 0;
}

int Client() {
  auto client = VrpcClient::Connect(absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_notify),
                                    absl::Seconds(20));
  if (!client.ok()) {
    std::printf("error %s\n", client.status().ToString().c_str());
    return 1;
  }
  return RunRssWorkload(**client);
}

}  // namespace
}  // namespace bench
}  // namespace vrpc

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return absl::GetFlag(FLAGS_role) == "client" ? vrpc::bench::Client() : vrpc::bench::Serve();
}
