// File: tests/bench/unary_loop.cc
//
//   unary_loop --warmup=W --count=N [--target=ADDRESS]
//
// The instruction-count subject (run under callgrind by compare.cc): a
// Bench server and a channel on the in-process loopback transport, W
// 64 B Echo calls through the callback API, then N more. Two runs that differ only in N
// give the instructions of (N2 - N1) calls: everything else (start-up,
// warm-up, shutdown) cancels. Exit 0 only if every call succeeded.
//
// With --target the calls go to a server elsewhere (for example vrpc_peer
// --notify=interrupt behind the vhost-user device, itself under callgrind)
// instead of the in-process one, so the driver's and the device's shares of
// a call can be counted too; interrupt mode, since a polling loop's spins
// would be counted as well.
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
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
ABSL_FLAG(std::string, target, "",
          "call this address instead of an in-process server on loopback:9");
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
  const std::string target = absl::GetFlag(FLAGS_target);
  absl::Status listened;
  if (target.empty()) (*loop)->RunSync([&] {
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
    auto connector = dial::Dial(target.empty() ? "loopback:9" : target, (*loop)->reactor());
    if (connector.ok()) channel = rpc::Channel::Create(*std::move(connector));
  });
  if (channel == nullptr || !channel->WaitForReady(absl::Now() + absl::Seconds(30))) return 1;
  // The calls run on the loop, each started by the previous one's
  // completion (the callback API): the loop always has work posted, so it
  // never waits in io_uring_enter, which valgrind 3.19 would treat as a
  // non-blocking call holding its big lock. This thread sleeps on a futex.
  bench::Bench::Stub stub(channel);
  bench::Blob request, reply;
  request.set_data(std::string(64, 'c'));
  const int total = absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_count);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, failures = 0;  // under mu
  std::unique_ptr<rpc::ClientContext> context;
  std::function<void()> next;  // loop thread
  next = [&] {
    context = std::make_unique<rpc::ClientContext>();
    stub.AsyncEcho(context.get(), request, &reply, [&](absl::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok()) ++failures;
      if (++done == total) {
        cv.notify_all();
      } else {
        (*loop)->reactor().Post([&] { next(); });  // the finished call is gone by then
      }
    });
  };
  (*loop)->reactor().Post([&] { next(); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == total; });
  }
  std::printf("calls %d failures %d\n", total, failures);
  channel->Shutdown();
  channel.reset();
  server.Shutdown(absl::Now() + absl::Seconds(1));
  return failures == 0 ? 0 : 1;
}
