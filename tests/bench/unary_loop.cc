// File: tests/bench/unary_loop.cc
//
//   unary_loop --warmup=W --count=N
//
// The instruction-count subject (run under callgrind by compare.cc): a
// Bench server and a channel on the in-process loopback transport, W
// blocking 64 B Echo calls, then N more. Two runs that differ only in N
// give the instructions of (N2 - N1) calls: everything else (start-up,
// warm-up, shutdown) cancels. Exit 0 only if every call succeeded.
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/server.h"
#include "tests/bench/bench_service.h"
#include "transport_vsock/dial/dial.h"

ABSL_FLAG(int, warmup, 100, "calls before the counted ones");
ABSL_FLAG(int, count, 1000, "counted calls");
ABSL_FLAG(int, tick_us, 0,
          "if > 0, a timer on the loop every tick_us: under valgrind, which runs one thread "
          "at a time, the io_uring wait holds valgrind's lock for its whole timeout (up to "
          "1 s) and other threads only run when a thread yields; the tick yields");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace vrpc;  // NOLINT: a main
  auto loop = io::EventLoopThread::Start("loop-server");
  if (!loop.ok()) return 1;
  bench::BenchServiceImpl service;
  rpc::ServerOptions options;
  options.max_worker_threads = 1;
  rpc::Server server(options);
  if (!server.RegisterService(&service).ok()) return 1;
  absl::Status listened;
  (*loop)->RunSync([&] {
    auto listener = dial::Listen("loopback:9", (*loop)->reactor());
    if (!listener.ok()) {
      listened = listener.status();
      return;
    }
    server.AddListener(*std::move(listener));
  });
  if (!listened.ok()) {
    std::fprintf(stderr, "unary_loop: %s\n", listened.ToString().c_str());
    return 1;
  }
  // The client's loop is its own, as in a real process pair; the loopback
  // pair lives on the server's loop, so the client dials through it.
  std::shared_ptr<rpc::Channel> channel;
  (*loop)->RunSync([&] {
    auto connector = dial::Dial("loopback:9", (*loop)->reactor());
    if (connector.ok()) channel = rpc::Channel::Create(*std::move(connector));
  });
  if (channel == nullptr || !channel->WaitForReady(absl::Now() + absl::Seconds(30))) return 1;
  // The tick (see --tick_us); its cost is part of the counted instructions
  // and bounded by the note compare prints.
  std::atomic<bool> ticking{absl::GetFlag(FLAGS_tick_us) > 0};
  std::atomic<int> ticks{0};
  std::function<void()> tick = [&] {
    if (!ticking.load()) return;
    ++ticks;
    sched_yield();  // a blocking syscall to valgrind: the other threads run
    (*loop)->reactor().RunAt(absl::Now() + absl::Microseconds(absl::GetFlag(FLAGS_tick_us)), tick);
  };
  if (ticking.load()) (*loop)->RunSync(tick);
  bench::Bench::Stub stub(channel);
  bench::Blob request, reply;
  request.set_data(std::string(64, 'c'));
  int failures = 0;
  const int total = absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_count);
  for (int i = 0; i < total; ++i) {
    rpc::ClientContext context;
    if (!stub.Echo(&context, request, &reply).ok()) ++failures;
  }
  ticking.store(false);
  std::printf("calls %d failures %d ticks %d\n", total, failures, ticks.load());
  channel->Shutdown();
  channel.reset();
  server.Shutdown(absl::Now() + absl::Seconds(1));
  return failures == 0 ? 0 : 1;
}
