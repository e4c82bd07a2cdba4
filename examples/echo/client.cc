// File: examples/echo/client.cc
//
//   bazel run //examples/echo:client -- --target=ADDR
//       [--mode=unary|client-stream|server-stream|bidi] [--count=N] [--size=BYTES]
//       [--api=blocking|callback] [--notify=MODE] [--timeout=DURATION]
//
// Calls the Echo service at ADDR (docs/addresses.md), e.g.
//   virtio-user:/tmp/vm3.vsock:2:5000   vrpc's guest driver, to the host
//   vhost-user:/tmp/vm3.vsock:3:5000    vrpc's device, to guest 3
//   unix:/tmp/echo.sock                 a Unix socket
//   loopback:5000                       in process (this client also runs
//                                       the server)
// Every reply is checked byte for byte against what was sent. Prints the
// connect time, latency percentiles and throughput; exits 0 only if every
// call succeeded and every reply matched, 1 otherwise, 2 for bad flags.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/channel.h"
#include "core/rpc/server.h"
#include "examples/echo/client_modes.h"
#include "examples/echo/echo_service.h"
#include "transport_vsock/dial/dial.h"

ABSL_FLAG(std::string, target, "", "address of the echo server");
ABSL_FLAG(std::string, mode, "unary", "unary, client-stream, server-stream or bidi");
ABSL_FLAG(std::string, api, "blocking",
          "blocking (the stub's blocking calls) or callback (AsyncUnary and the reactors, "
          "every step on the channel's loop)");
ABSL_FLAG(int64_t, count, 1000, "calls (unary) or messages (streams)");
ABSL_FLAG(int64_t, size, 64, "payload bytes per message");
ABSL_FLAG(std::string, notify, "interrupt",
          "userspace transports: interrupt, poll (busy-poll a core) or adaptive");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60), "deadline of each call and of connecting");

namespace vrpc {
namespace echo_example {
namespace {

using echo::Echo;

double Micros(absl::Duration d) { return absl::ToDoubleMicroseconds(d); }

void Report(const Run& run, const std::string& target, absl::Duration connect, absl::Duration total,
            Result& r, const rpc::ChannelStats& stats) {
  std::sort(r.latencies.begin(), r.latencies.end());
  auto pct = [&](double p) {
    if (r.latencies.empty()) return 0.0;
    size_t i = static_cast<size_t>(p * (r.latencies.size() - 1) + 0.5);
    return Micros(r.latencies[i]);
  };
  const double seconds = std::max(absl::ToDoubleSeconds(total), 1e-9);
  const double bytes = static_cast<double>(r.messages) * run.size *
                       (run.mode == "server-stream" || run.mode == "client-stream" ? 1 : 2);
  std::printf("echo %s to %s: %llu x %zu B, %llu ok, %llu failed\n", run.mode.c_str(),
              target.c_str(), static_cast<unsigned long long>(run.count), run.size,
              static_cast<unsigned long long>(r.messages),
              static_cast<unsigned long long>(r.failures));
  std::printf("  connect %.1f us; %s p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
              Micros(connect),
              run.mode == "server-stream" ? "reply gap"
              : run.mode == "client-stream" ? "stream" : "round trip",
              pct(0.5), pct(0.9), pct(0.99), pct(1.0));
  std::printf("  %.0f messages/s, %.1f MB/s; payload bytes copied by the transport: rx %llu, "
              "tx %llu\n",
              r.messages / seconds, bytes / seconds / 1e6,
              static_cast<unsigned long long>(stats.transport.rx_bytes_copied),
              static_cast<unsigned long long>(stats.transport.tx_bytes_copied));
  if (r.failures > 0) std::printf("  first failure: %s\n", r.first_error.c_str());
}

int Main() {
  const std::string target = absl::GetFlag(FLAGS_target);
  Run run;
  run.mode = absl::GetFlag(FLAGS_mode);
  run.timeout = absl::GetFlag(FLAGS_timeout);
  const int64_t count = absl::GetFlag(FLAGS_count);
  const int64_t size = absl::GetFlag(FLAGS_size);
  if (target.empty()) {
    std::fprintf(stderr, "echo client: --target=ADDR is required\n");
    return 2;
  }
  if (run.mode != "unary" && run.mode != "client-stream" && run.mode != "server-stream" &&
      run.mode != "bidi") {
    std::fprintf(stderr, "echo client: --mode must be unary, client-stream, server-stream or "
                         "bidi\n");
    return 2;
  }
  const std::string api = absl::GetFlag(FLAGS_api);
  if (api != "blocking" && api != "callback") {
    std::fprintf(stderr, "echo client: --api must be blocking or callback\n");
    return 2;
  }
  const bool callback = api == "callback";
  if (count < 1 || count > kMaxStreamReplies || size < 0 || size > (4 << 20) - 64) {
    std::fprintf(stderr, "echo client: --count must be 1..%u and --size 0..%d\n",
                 kMaxStreamReplies, (4 << 20) - 64);
    return 2;
  }
  run.count = static_cast<uint64_t>(count);
  run.size = static_cast<size_t>(size);

  auto loop = io::EventLoopThread::Start("echo-client");
  if (!loop.ok()) {
    std::fprintf(stderr, "echo client: %s\n", loop.status().ToString().c_str());
    return 1;
  }
  dial::DialOptions options;
  options.notify_mode = absl::GetFlag(FLAGS_notify);
  // loopback: exists only in this process, so serve it here too.
  EchoServiceImpl service;
  std::unique_ptr<rpc::Server> server;
  std::shared_ptr<rpc::Channel> channel;
  absl::Status setup;
  (*loop)->RunSync([&] {
    if (absl::StartsWith(target, "loopback:")) {
      server = std::make_unique<rpc::Server>();
      setup = server->RegisterService(&service);
      auto listener = dial::Listen(target, (*loop)->reactor(), options);
      if (!listener.ok()) {
        setup = listener.status();
        return;
      }
      server->AddListener(*std::move(listener));
    }
    auto connector = dial::Dial(target, (*loop)->reactor(), options);
    if (!connector.ok()) {
      setup = connector.status();
      return;
    }
    channel = rpc::Channel::Create(*std::move(connector));
  });
  if (!setup.ok()) {
    std::fprintf(stderr, "echo client: %s\n", setup.ToString().c_str());
    return absl::IsInvalidArgument(setup) ? 2 : 1;
  }
  const absl::Time start = absl::Now();
  if (!channel->WaitForReady(start + run.timeout)) {
    std::fprintf(stderr, "echo client: %s not ready within %s: %s\n", target.c_str(),
                 absl::FormatDuration(run.timeout).c_str(),
                 channel->state_info().last_error.ToString().c_str());
    channel->Shutdown();
    if (server != nullptr) server->Shutdown(absl::Now());
    return 1;
  }
  const absl::Duration connect = absl::Now() - start;

  Echo::Stub stub(channel);
  Result result;
  const absl::Time begin = absl::Now();
  if (callback) {
    RunCallback(stub, (*loop)->reactor(), run, result);
  } else {
    RunBlocking(stub, run, result);
  }
  const absl::Duration total = absl::Now() - begin;
  Report(run, target, connect, total, result, channel->stats());

  channel->Shutdown();
  if (server != nullptr) server->Shutdown(absl::Now() + absl::Seconds(1));
  channel.reset();  // off the loop thread, as a Channel must be
  server.reset();
  return result.failures == 0 && result.messages > 0 ? 0 : 1;
}

}  // namespace
}  // namespace echo_example
}  // namespace vrpc

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "calls vrpc.echo.Echo: --target=ADDR [--mode=unary|client-stream|server-stream|bidi] "
      "[--count=N] [--size=BYTES] [--api=blocking|callback]");
  absl::ParseCommandLine(argc, argv);
  return vrpc::echo_example::Main();
}
