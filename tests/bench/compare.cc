// File: tests/bench/compare.cc
//
//   bazel run -c opt //tests/bench:compare -- --json=FILE [--smoke] [--rounds=N]
//                                             [--only=poll,interrupt,...]
//
// Measures, in one run on this machine: the floors (cache-line ping-pong,
// a 64 B SPSC ring, eventfd, Unix-socket ping-pong, memcpy, Unix-socket
// streaming), gRPC C++ over a Unix socket (server in a child process), and
// vrpc over its userspace virtio-vsock: the device serves in a child
// process (vrpc_peer --listen=vhost-user:...), this process is the client
// through the guest driver (virtio-user:...). Then it checks the goals,
// prints a table and writes JSON (report.h).
//
// Polled ratios are measured interleaved (stats.h): short batches of the
// baseline and of vrpc alternate and each pair's medians are compared. While
// a baseline batch runs, vrpc's busy-polling loops are parked (the client's
// loop blocks, the server process is SIGSTOPped) so they do not steal the
// two vCPUs.
//
// --smoke: tiny counts, every path once (CI). Exit status: 0 when every
// figure path ran (goals may be missed), 1 if one failed, 2 for bad flags.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tests/bench/baselines.h"
#include "tests/bench/callgrind.h"
#include "tests/bench/child_process.h"
#include "tests/bench/grpc_client.h"
#include "tests/bench/report.h"
#include "tests/bench/stats.h"
#include "tests/bench/vrpc_client.h"

ABSL_FLAG(std::string, json, "", "write the figures and goals as JSON to this file");
ABSL_FLAG(bool, smoke, false, "tiny counts: every path once (CI), numbers meaningless");
ABSL_FLAG(int, rounds, 0, "interleaved rounds (0: 3 with --smoke, else 15)");
ABSL_FLAG(std::string, only, "",
          "comma-separated parts to run (baselines,grpc,poll,interrupt,unix,callgrind); "
          "empty: all. Goals whose figures were not measured print as missing");

namespace vrpc {
namespace bench {
namespace {

constexpr size_t kMiB = 1 << 20;

// Iteration counts: full run or --smoke.
struct Counts {
  int rounds;
  int shm_samples;     // per baseline batch (x kGroup round trips)
  int wake_samples;    // eventfd / Unix-socket round trips per batch
  int rpc_calls;       // unary calls per vrpc/gRPC batch
  int pipelined;       // pipelined calls
  int window;          // pipelined calls in flight
  int mib_calls;       // 1 MiB unary calls
  int mib_stream;      // 1 MiB messages in one stream
  int connects;        // connection setups timed
  int callgrind_n1, callgrind_n2;
  int memcpy_reps;     // 1 MiB copies
  int callgrind_timeout_s;
};

Counts CountsFor(bool smoke, int rounds) {
  if (smoke) return {rounds > 0 ? rounds : 2, 50, 50, 20, 500, 64, 2, 4, 2, 5, 10, 20, 15};
  return {rounds > 0 ? rounds : 15, 400, 400, 400, 200000, 128, 64, 256, 20, 100, 1100, 2000, 240};
}

struct Env {
  Counts n;
  std::string tmp;        // scratch directory for sockets and callgrind files
  std::string bin;        // where the peer binaries are
  Report report;
  int failures = 0;       // figure paths that failed
  void Fail(const std::string& figure, const std::string& why) {
    ++failures;
    std::fprintf(stderr, "compare: %s FAILED: %s\n", figure.c_str(), why.c_str());
    report.Missing(figure, "", "FAILED: " + why);
  }
};

double Us(double ns) { return ns / 1e3; }

// ---------------------------------------------------------------------------
// Floors

void MeasureBaselines(Env& env) {
  std::printf("baselines...\n");
  std::fflush(stdout);
  env.report.Add("cache-line ping-pong RTT p50", Median(CacheLineRttNs(env.n.shm_samples)), "ns");
  env.report.Add("SPSC ring 64 B RTT p50", Median(SpscRingRttNs(env.n.shm_samples)), "ns");
  env.report.Add("eventfd ping-pong RTT p50", Us(Median(EventfdRttNs(env.n.wake_samples))), "us");
  env.report.Add("Unix socket 64 B ping-pong RTT p50",
                 Us(Median(UnixSocketRttNs(env.n.wake_samples, 64))), "us");
  env.report.Add("memcpy 1 MiB", MemcpyGBps(kMiB, env.n.memcpy_reps), "GB/s");
  env.report.Add("Unix socket stream (1 MiB writes)",
                 UnixStreamGBps(static_cast<size_t>(env.n.mib_stream) * kMiB, kMiB), "GB/s");
}

// ---------------------------------------------------------------------------
// Peers

absl::StatusOr<std::unique_ptr<ChildProcess>> StartPeer(const Env& env, const std::string& binary,
                                                        std::vector<std::string> args) {
  args.insert(args.begin(), env.bin + "/" + binary);
  return ChildProcess::Start(args, "ready", absl::Seconds(30));
}

// Runs a memory-workload client child and reads the server's memory after
// it: {client VmHWM, server VmHWM} in KiB.
absl::StatusOr<std::pair<double, double>> MeasureRss(const Env& env, const std::string& binary,
                                                     ChildProcess& server,
                                                     std::vector<std::string> client_args) {
  client_args.insert(client_args.begin(), "--role=client");
  auto client = StartPeer(env, binary, client_args);
  if (!client.ok()) return client.status();
  int64_t client_hwm = 0;
  for (absl::string_view field : absl::StrSplit((*client)->ready_line(), ' ')) {
    if (absl::ConsumePrefix(&field, "hwm_kb=")) (void)absl::SimpleAtoi(field, &client_hwm);
  }
  auto server_mem = ReadProcMemory(server.pid());
  if (!server_mem.ok()) return server_mem.status();
  (*client)->Wait(absl::Seconds(10)).IgnoreError();
  return std::make_pair(static_cast<double>(client_hwm), static_cast<double>(server_mem->hwm_kb));
}

void MeasureGrpc(Env& env) {
  std::printf("gRPC over a Unix socket...\n");
  std::fflush(stdout);
  const std::string address = "unix:" + env.tmp + "/grpc.sock";
  auto server = StartPeer(env, "grpc_peer", {"--role=server", "--listen=" + address});
  if (!server.ok()) return env.Fail("gRPC server", server.status().ToString());
  {
    auto client = GrpcClient::Connect(address, absl::Seconds(20));
    if (!client.ok()) return env.Fail("gRPC client", client.status().ToString());
    std::vector<double> rtt = (*client)->UnaryRttNs(env.n.rpc_calls * env.n.rounds / 4 + 10, 64);
    if (rtt.empty()) return env.Fail("gRPC unary 64 B RTT", "a call failed");
    env.report.Add("gRPC unary 64 B RTT p50", Us(Percentile(rtt, 0.5)), "us");
    env.report.Add("gRPC unary 64 B RTT p99", Us(Percentile(rtt, 0.99)), "us");
    const double unary = (*client)->UnaryThroughputGBps(env.n.mib_calls, kMiB);
    if (unary <= 0) return env.Fail("gRPC 1 MiB unary throughput", "a call failed");
    env.report.Add("gRPC 1 MiB unary throughput", unary, "GB/s");
    const double stream = (*client)->StreamThroughputGBps(env.n.mib_stream, kMiB);
    if (stream <= 0) return env.Fail("gRPC 1 MiB streaming throughput", "the stream failed");
    env.report.Add("gRPC 1 MiB streaming throughput", stream, "GB/s");
  }
  (*server)->Terminate(absl::Seconds(5));
  // Memory: a fresh server and a client process running the same workload.
  server = StartPeer(env, "grpc_peer", {"--role=server", "--listen=" + address});
  if (!server.ok()) return env.Fail("gRPC server (memory)", server.status().ToString());
  auto rss = MeasureRss(env, "grpc_peer", **server, {"--target=" + address});
  if (!rss.ok()) return env.Fail("gRPC client/server VmHWM", rss.status().ToString());
  env.report.Add("gRPC client VmHWM (memory workload)", rss->first / 1024, "MiB");
  env.report.Add("gRPC server VmHWM (memory workload)", rss->second / 1024, "MiB");
  (*server)->Terminate(absl::Seconds(5));
}

// ---------------------------------------------------------------------------
// vrpc over virtio-user <-> vhost-user device

struct VrpcSession {
  std::unique_ptr<ChildProcess> server;
  std::unique_ptr<VrpcClient> client;
};

// In interrupt mode the two loops are pinned like the eventfd baseline's
// threads (client CPU 0, server CPU 1): otherwise where the scheduler first
// put each process decides whether a wake-up crosses CPUs, and the RTT
// jumps between process starts. Busy pollers are left unpinned; the
// scheduler already keeps them apart.
absl::StatusOr<VrpcSession> StartVrpc(const Env& env, const std::string& mode,
                                      const std::string& socket) {
  VrpcSession s;
  const bool pin = mode == "interrupt";
  auto server = StartPeer(env, "vrpc_peer",
                          {"--role=server", "--listen=vhost-user:" + socket + ":3:5000",
                           "--notify=" + mode, "--workers=1", pin ? "--loop_cpu=1" : "--loop_cpu=-1"});
  if (!server.ok()) return server.status();
  s.server = *std::move(server);
  auto client = VrpcClient::Connect("virtio-user:" + socket + ":2:5000", mode,
                                    absl::Seconds(20), pin ? 0 : -1);
  if (!client.ok()) return client.status();
  s.client = *std::move(client);
  return s;
}

void StopVrpc(VrpcSession& s) {
  s.client.reset();
  if (s.server != nullptr) s.server->Terminate(absl::Seconds(5));
  s.server.reset();
}

// Records a pipelined figure. A stall (calls stopped completing; a
// transport bug, reported in docs/benchmarks.md) is a missing figure with a
// note, not a crash of this program; a failed call is a failure.
bool AddPipelined(Env& env, const std::string& name, double per_second) {
  if (per_second < 0) {
    std::fprintf(stderr, "compare: WARNING: %s stalled\n", name.c_str());
    env.report.Missing(name, "M/s", "STALLED: calls stopped completing for 5 s; cancelled");
    return true;
  }
  if (per_second == 0) {
    env.Fail(name, "a call failed");
    return false;
  }
  env.report.Add(name, per_second / 1e6, "M/s", absl::StrCat("window ", env.n.window));
  return true;
}

// The same unary Echo from an application thread through the blocking stub:
// two more thread hand-offs per call (caller -> client loop -> caller).
bool AddBlockingRtt(Env& env, VrpcSession& s, const std::string& mode) {
  const std::string name = "vrpc " + mode + " unary 64 B RTT p50 (blocking stub)";
  std::vector<double> v = s.client->UnaryRttNs(env.n.rpc_calls * 2, 64);
  if (v.empty()) {
    env.Fail(name, "a call failed");
    return false;
  }
  env.report.Add(name, Us(Percentile(v, 0.5)), "us", "not interleaved");
  return true;
}

// A baseline batch with vrpc's pollers parked.
std::vector<double> Parked(VrpcSession& s, const std::function<std::vector<double>()>& batch) {
  s.client->Pause();
  s.server->Pause();
  std::vector<double> out = batch();
  s.server->Resume();
  s.client->Resume();
  return out;
}

void MeasureVrpcPoll(Env& env) {
  std::printf("vrpc, polling (driver <-> device, two processes)...\n");
  std::fflush(stdout);
  auto session = StartVrpc(env, "poll", env.tmp + "/poll.vsock");
  if (!session.ok()) return env.Fail("vrpc poll session", session.status().ToString());
  VrpcSession& s = *session;
  env.report.Add("vrpc virtio-user driver attach (Dial)",
                 absl::ToDoubleMicroseconds(s.client->dial_time()), "us");
  s.client->CallbackUnaryRttNs(env.n.rpc_calls, 64);  // warm
  bool failed = false;
  Interleaved lat = RunInterleaved(
      env.n.rounds, [&] { return Parked(s, [&] { return CacheLineRttNs(env.n.shm_samples); }); },
      [&] {
        std::vector<double> v = s.client->CallbackUnaryRttNs(env.n.rpc_calls, 64);
        failed |= v.empty();
        return v;
      });
  if (failed) return env.Fail("vrpc poll unary 64 B RTT", "a call failed");
  env.report.Add("cache-line RTT p50 (interleaved with vrpc poll)", Median(lat.baseline), "ns");
  env.report.Add("vrpc poll unary 64 B RTT p50", Us(Percentile(lat.subject, 0.5)), "us",
                 "callback API");
  env.report.Add("vrpc poll unary 64 B RTT p99", Us(Percentile(lat.subject, 0.99)), "us",
                 "callback API");
  env.report.Add("vrpc poll unary p50 / cache-line p50 (median of rounds)", lat.ratio(), "x",
                 absl::StrCat(lat.ratios.size(), " interleaved rounds"));
  if (!AddBlockingRtt(env, s, "poll")) return;

  const double pipelined = s.client->PipelinedCallsPerSecond(env.n.pipelined, env.n.window, 64);
  if (!AddPipelined(env, "vrpc poll pipelined 64 B (1 client, 1 server thread)", pipelined)) {
    return;
  }
  const double unary = s.client->UnaryThroughputGBps(env.n.mib_calls, kMiB);
  if (unary <= 0) return env.Fail("vrpc poll 1 MiB unary throughput", "a call failed");
  env.report.Add("vrpc poll 1 MiB unary throughput", unary, "GB/s");

  Interleaved stream = RunInterleaved(
      env.n.rounds,
      [&] {
        return Parked(s, [&] {
          return std::vector<double>{
              UnixStreamGBps(static_cast<size_t>(env.n.mib_stream) * kMiB / 4, kMiB)};
        });
      },
      [&] {
        const double v = s.client->StreamThroughputGBps(env.n.mib_stream / 4, kMiB);
        failed |= v <= 0;
        return v > 0 ? std::vector<double>{v} : std::vector<double>{};
      });
  if (failed) return env.Fail("vrpc poll 1 MiB streaming throughput", "the stream failed");
  env.report.Add("Unix socket stream (interleaved with vrpc streaming)", Median(stream.baseline),
                 "GB/s");
  env.report.Add("vrpc poll 1 MiB streaming throughput", Median(stream.subject), "GB/s",
                 "callback API, reactor on both ends");
  env.report.Add("vrpc streaming / Unix stream (median of rounds)", stream.ratio(), "x");
  const double blocking_stream = s.client->BlockingStreamThroughputGBps(env.n.mib_stream / 4, kMiB);
  if (blocking_stream <= 0) {
    return env.Fail("vrpc poll 1 MiB streaming throughput (blocking stub)", "the stream failed");
  }
  env.report.Add("vrpc poll 1 MiB streaming throughput (blocking stub)", blocking_stream, "GB/s",
                 "ClientWriter on this thread, not interleaved");

  std::vector<double> connects = s.client->ConnectTimesUs(env.n.connects);
  if (connects.empty()) return env.Fail("vrpc connection setup", "a connect failed");
  env.report.Add("vrpc poll connection setup (Connect -> READY) p50", Median(connects), "us");
  StopVrpc(s);
}

void MeasureVrpcInterrupt(Env& env) {
  std::printf("vrpc, notifications (eventfds)...\n");
  std::fflush(stdout);
  const std::string socket = env.tmp + "/irq.vsock";
  {
    auto session = StartVrpc(env, "interrupt", socket);
    if (!session.ok()) return env.Fail("vrpc interrupt session", session.status().ToString());
    VrpcSession& s = *session;
    s.client->CallbackUnaryRttNs(env.n.rpc_calls / 4 + 1, 64);  // warm
    bool failed = false;
    Interleaved lat = RunInterleaved(
        env.n.rounds, [&] { return EventfdRttNs(env.n.wake_samples); },
        [&] {
          std::vector<double> v = s.client->CallbackUnaryRttNs(env.n.rpc_calls, 64);
          failed |= v.empty();
          return v;
        });
    if (failed) return env.Fail("vrpc interrupt unary 64 B RTT", "a call failed");
    env.report.Add("eventfd RTT p50 (interleaved with vrpc interrupt)", Us(Median(lat.baseline)),
                   "us");
    env.report.Add("vrpc interrupt unary 64 B RTT p50", Us(Percentile(lat.subject, 0.5)), "us",
                   "callback API");
    env.report.Add("vrpc interrupt unary 64 B RTT p99", Us(Percentile(lat.subject, 0.99)), "us",
                   "callback API");
    env.report.Add("vrpc interrupt unary p50 / eventfd p50 (median of rounds)", lat.ratio(), "x");
    if (!AddBlockingRtt(env, s, "interrupt")) return;
    const double pipelined =
        s.client->PipelinedCallsPerSecond(env.n.pipelined / 4, env.n.window, 64);
    if (!AddPipelined(env, "vrpc interrupt pipelined 64 B", pipelined)) return;
    StopVrpc(s);
  }
  // Memory: the device serves one driver at a time, so a fresh server and a
  // client process running the gRPC pair's workload.
  auto server = StartPeer(env, "vrpc_peer",
                          {"--role=server", "--listen=vhost-user:" + socket + ":3:5000",
                           "--notify=interrupt", "--workers=1"});
  if (!server.ok()) return env.Fail("vrpc server (memory)", server.status().ToString());
  auto rss = MeasureRss(env, "vrpc_peer", **server,
                        {"--target=virtio-user:" + socket + ":2:5000", "--notify=interrupt"});
  if (!rss.ok()) return env.Fail("vrpc client/server VmHWM", rss.status().ToString());
  env.report.Add("vrpc client VmHWM (memory workload)", rss->first / 1024, "MiB");
  env.report.Add("vrpc server VmHWM (memory workload)", rss->second / 1024, "MiB");
  (*server)->Terminate(absl::Seconds(5));
}

// vrpc over the kernel's AF_UNIX transport (unix: addresses). Missing, not
// failed, while dial answers UNIMPLEMENTED for unix:.
void MeasureVrpcUnix(Env& env) {
  std::printf("vrpc over AF_UNIX...\n");
  std::fflush(stdout);
  const char* kName = "vrpc unix: unary 64 B RTT p50";
  const std::string address = "unix:" + env.tmp + "/vrpc_unix.sock";
  auto server = StartPeer(env, "vrpc_peer", {"--role=server", "--listen=" + address});
  if (!server.ok()) {
    if (absl::StrContains(server.status().message(), "UNIMPLEMENTED")) {
      return env.report.Missing(kName, "us", "the unix: transport is not built yet (dial)");
    }
    return env.Fail(kName, server.status().ToString());
  }
  auto client = VrpcClient::Connect(address, "interrupt", absl::Seconds(20));
  if (!client.ok()) return env.Fail(kName, client.status().ToString());
  std::vector<double> rtt = (*client)->UnaryRttNs(env.n.rpc_calls * 2, 64);
  if (rtt.empty()) return env.Fail(kName, "a call failed");
  env.report.Add(kName, Us(Median(rtt)), "us");
  client->reset();
  (*server)->Terminate(absl::Seconds(5));
}

// Valgrind cannot run a sanitizer build (CI's ASan/UBSan phase builds this).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

void MeasureInstructions(Env& env) {
  std::printf("instructions per call (callgrind)...\n");
  std::fflush(stdout);
  const char* kName = "instructions per unary 64 B call (loopback, both ends)";
  const char* kClient = "instructions per unary 64 B call over the device: client + driver";
  const char* kServer = "instructions per unary 64 B call over the device: device + server";
  auto missing = [&](const std::string& why) {
    for (const char* name : {kName, kClient, kServer}) env.report.Missing(name, "instr", why);
  };
  if (kSanitized) return missing("a sanitizer build: valgrind cannot run it (use -c opt)");
  absl::StatusOr<double> ir = InstructionsPerCall(env.bin + "/unary_loop", env.tmp, 20,
                                                  env.n.callgrind_n1, env.n.callgrind_n2,
                                                  env.n.callgrind_timeout_s);
  if (absl::IsDeadlineExceeded(ir.status())) {
    return missing("valgrind 3.19 stalls on the io_uring reactor (see docs/benchmarks.md): " +
                   std::string(ir.status().message()));
  }
  if (absl::IsNotFound(ir.status())) return missing(ir.status().ToString());
  if (!ir.ok()) {
    env.Fail(kName, ir.status().ToString());
    for (const char* name : {kClient, kServer}) {
      env.report.Missing(name, "instr", "not run: the loopback count failed");
    }
    return;
  }
  const std::string how = absl::StrCat("(Ir(", env.n.callgrind_n2, ") - Ir(",
                                       env.n.callgrind_n1, ")) / ",
                                       env.n.callgrind_n2 - env.n.callgrind_n1);
  env.report.Add(kName, *ir, "instr", how);

  // The same calls over the driver and the device, each end in its process.
  absl::StatusOr<DeviceInstructions> dev =
      InstructionsOverDevice(env.bin, env.tmp, 20, env.n.callgrind_n1, env.n.callgrind_n2,
                             env.n.callgrind_timeout_s);
  if (!dev.ok()) {
    env.Fail(kClient, dev.status().ToString());
    return env.report.Missing(kServer, "instr", "see the client figure");
  }
  const std::string interrupt = how + ", interrupt mode";
  env.report.Add(kClient, dev->client, "instr", interrupt);
  env.report.Add(kServer, dev->server, "instr", interrupt);
}

// ---------------------------------------------------------------------------
// Goals

std::optional<double> Div(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return std::nullopt;
  return *a / *b;
}

void CheckGoals(Env& env) {
  Report& r = env.report;
  auto g = [&](const char* n) { return r.Get(n); };
  const auto poll_ratio = g("vrpc poll unary p50 / cache-line p50 (median of rounds)");
  r.AddGoal("poll unary 64 B p50 <= 8x cache-line RTT (interleaved)", poll_ratio, 8, true);
  r.AddGoal("poll unary 64 B p50 <= 4x cache-line RTT (stretch)", poll_ratio, 4, true);
  r.AddGoal("gRPC unary p50 / vrpc poll unary p50 >= 100x",
            Div(g("gRPC unary 64 B RTT p50"), g("vrpc poll unary 64 B RTT p50")), 100, false);
  r.AddGoal("poll unary p99 <= 3x p50",
            Div(g("vrpc poll unary 64 B RTT p99"), g("vrpc poll unary 64 B RTT p50")), 3, true);
  r.AddGoal("interrupt unary p50 <= 1.1x eventfd RTT (interleaved)",
            g("vrpc interrupt unary p50 / eventfd p50 (median of rounds)"), 1.1, true);
  r.AddGoal("pipelined 64 B >= 5 M calls/s (ratio: M/s)",
            g("vrpc poll pipelined 64 B (1 client, 1 server thread)"), 5, false);
  r.AddGoal("1 MiB streaming >= 1x Unix-socket stream (interleaved)",
            g("vrpc streaming / Unix stream (median of rounds)"), 1, false);
  r.AddGoal("1 MiB streaming >= 4x gRPC 1 MiB unary",
            Div(g("vrpc poll 1 MiB streaming throughput"), g("gRPC 1 MiB unary throughput")), 4,
            false);
  r.AddGoal("client VmHWM <= 0.5x gRPC client",
            Div(g("vrpc client VmHWM (memory workload)"), g("gRPC client VmHWM (memory workload)")),
            0.5, true);
  r.AddGoal("server VmHWM <= 0.5x gRPC server",
            Div(g("vrpc server VmHWM (memory workload)"), g("gRPC server VmHWM (memory workload)")),
            0.5, true);
}

int Main() {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  Env env{CountsFor(smoke, absl::GetFlag(FLAGS_rounds))};
  char tmpl[] = "/tmp/vrpc_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  env.tmp = tmpl;
  env.bin = SelfDir();
  std::printf("vrpc compare%s: %d interleaved rounds; scratch %s\n", smoke ? " (smoke)" : "",
              env.n.rounds, env.tmp.c_str());
  const std::string only = absl::GetFlag(FLAGS_only);
  auto part = [&](const char* name, void (*measure)(Env&)) {
    const std::string wanted = absl::StrCat(",", only, ",");
    if (only.empty() || absl::StrContains(wanted, absl::StrCat(",", name, ","))) measure(env);
  };
  part("baselines", MeasureBaselines);
  part("grpc", MeasureGrpc);
  part("poll", MeasureVrpcPoll);
  part("interrupt", MeasureVrpcInterrupt);
  part("unix", MeasureVrpcUnix);
  part("callgrind", MeasureInstructions);
  CheckGoals(env);
  env.report.Print();
  std::printf("\nPolled ratios are medians of per-round ratios from interleaved batches "
              "(baseline, vrpc, baseline, ...);\nvrpc's pollers are parked during baseline "
              "batches. gRPC figures are not interleaved.\n");
  const std::string json = absl::GetFlag(FLAGS_json);
  if (!json.empty()) {
    if (absl::Status s = env.report.WriteJson(json); !s.ok()) {
      std::fprintf(stderr, "compare: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("wrote %s\n", json.c_str());
  }
  (void)!std::system(absl::StrCat("rm -rf ", env.tmp).c_str());
  if (env.failures > 0) std::printf("%d figure path(s) FAILED\n", env.failures);
  return env.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace bench
}  // namespace vrpc

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return vrpc::bench::Main();
}
