// File: tests/bench/vrpc_client.h
//
// The measuring side of vrpc: a Channel to the bench server at an address
// (docs/addresses.md) on its own event loop, and the measurements made
// through it. Latencies are in nanoseconds, one sample per call.
//
// Threading: one application thread drives a VrpcClient; the calls'
// callbacks run on its loop thread.
#ifndef VRPC_TESTS_BENCH_VRPC_CLIENT_H_
#define VRPC_TESTS_BENCH_VRPC_CLIENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/channel.h"
#include "tests/bench/bench.vrpc.pb.h"

namespace vrpc {
namespace bench {

class VrpcClient {
 public:
  // Dials |target| with |notify_mode| and waits until the channel is READY
  // (bounded by |timeout|). The dial (for virtio-user: the driver's
  // vhost-user bring-up) and the connect are timed separately.
  // |loop_cpu| >= 0 pins the client's loop thread to that CPU.
  static absl::StatusOr<std::unique_ptr<VrpcClient>> Connect(const std::string& target,
                                                             const std::string& notify_mode,
                                                             absl::Duration timeout,
                                                             int loop_cpu = -1);
  // Shuts the channels down and stops the loop.
  ~VrpcClient();
  VrpcClient(const VrpcClient&) = delete;
  VrpcClient& operator=(const VrpcClient&) = delete;

  absl::Duration dial_time() const { return dial_time_; }
  absl::Duration connect_time() const { return connect_time_; }

  // Blocking Echo calls of |bytes|, one at a time from this thread. Empty
  // if a call fails (the error goes to stderr).
  std::vector<double> UnaryRttNs(int calls, size_t bytes);
  // Echo calls of |bytes| through the callback API, one at a time, each
  // started on the client's loop when the previous one completed: the RTT
  // without the hand-off between an application thread and the loop.
  // Empty if a call fails.
  std::vector<double> CallbackUnaryRttNs(int calls, size_t bytes);
  // Async Echo calls of |bytes| with |window| in flight, each next call
  // started from the previous one's completion: calls per second, 0 if a
  // call failed, -1 if the calls stopped completing for 5 s (then they are
  // cancelled).
  double PipelinedCallsPerSecond(int calls, int window, size_t bytes);
  // |calls| blocking Sink calls of |bytes|: payload GB/s, 0 on failure.
  double UnaryThroughputGBps(int calls, size_t bytes);
  // One StreamSink call of |messages| x |bytes| through the callback API
  // (a ClientWriteReactor on the client's loop: each message is serialized
  // there when the previous one was taken): payload GB/s, 0 on failure.
  double StreamThroughputGBps(int messages, size_t bytes);
  // The same through the blocking stub (ClientWriter) from this thread.
  double BlockingStreamThroughputGBps(int messages, size_t bytes);
  // |n| times: a new connector to the same target on this loop (sharing the
  // transport), a new Channel, Connect() -> READY. Microseconds.
  std::vector<double> ConnectTimesUs(int n);

  // Blocks the loop thread until Resume(): a busy-polling transport stops
  // spinning while a baseline batch runs. Not reentrant.
  void Pause();
  void Resume();

 private:
  VrpcClient(std::string target, std::string notify_mode)
      : target_(std::move(target)), notify_mode_(std::move(notify_mode)) {}

  const std::string target_;
  const std::string notify_mode_;
  std::unique_ptr<io::EventLoopThread> loop_;
  std::shared_ptr<rpc::Channel> channel_;
  std::unique_ptr<Bench::Stub> stub_;
  absl::Duration dial_time_;
  absl::Duration connect_time_;
  struct PauseGate;
  std::shared_ptr<PauseGate> gate_;
};

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_VRPC_CLIENT_H_
