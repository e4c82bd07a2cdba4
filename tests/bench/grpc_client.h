// File: tests/bench/grpc_client.h
//
// The gRPC baseline's measuring side: Debian's grpc++ (1.51) sync stub to
// the GrpcBench server (grpc_peer) at a gRPC target such as
// "unix:/tmp/x.sock". Same methods and messages as the vrpc side.
// One application thread at a time.
#ifndef VRPC_TESTS_BENCH_GRPC_CLIENT_H_
#define VRPC_TESTS_BENCH_GRPC_CLIENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vrpc {
namespace bench {

class GrpcClient {
 public:
  // Connects and waits for the channel to be READY within |timeout|.
  static absl::StatusOr<std::unique_ptr<GrpcClient>> Connect(const std::string& target,
                                                             absl::Duration timeout);
  ~GrpcClient();
  GrpcClient(const GrpcClient&) = delete;
  GrpcClient& operator=(const GrpcClient&) = delete;

  absl::Duration connect_time() const { return connect_time_; }
  // As VrpcClient's: ns per blocking Echo; empty on failure.
  std::vector<double> UnaryRttNs(int calls, size_t bytes);
  // Blocking Sink calls: payload GB/s, 0 on failure.
  double UnaryThroughputGBps(int calls, size_t bytes);
  // One StreamSink: payload GB/s, 0 on failure.
  double StreamThroughputGBps(int messages, size_t bytes);

 private:
  GrpcClient() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  absl::Duration connect_time_;
};

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_GRPC_CLIENT_H_
