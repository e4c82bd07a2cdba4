// File: tests/bench/bench_service.h
//
// The vrpc side of the benchmark's service (bench.proto): Echo, Sink and
// StreamSink, as small as a handler can be, so the figures measure the
// framework. Stateless and thread-safe. Echo and Sink never block, so they
// may run inline on the server's reactor (the default), or on the worker
// threads like any handler. StreamSink is served by a ServerReadReactor on
// the reactor (the default) or by the blocking handler on a worker.
#ifndef VRPC_TESTS_BENCH_BENCH_SERVICE_H_
#define VRPC_TESTS_BENCH_BENCH_SERVICE_H_

#include "absl/status/status.h"
#include "core/rpc/context.h"
#include "core/rpc/stub.h"
#include "tests/bench/bench.pb.h"
#include "tests/bench/bench.vrpc.pb.h"

namespace vrpc {
namespace bench {

class BenchServiceImpl final : public Bench::Service {
 public:
  // |inline_unary|: run Echo and Sink on the reactor (Service::RunInline).
  // |reactor_streaming|: serve StreamSink with a reactor on the reactor
  // thread (Service::ServeOnReactor).
  explicit BenchServiceImpl(bool inline_unary = true, bool reactor_streaming = true);
  absl::Status Echo(rpc::ServerContext* context, const Blob* request, Blob* reply) override;
  absl::Status Sink(rpc::ServerContext* context, const Blob* request, Ack* reply) override;
  absl::Status StreamSink(rpc::ServerContext* context, rpc::ServerReader<Blob>* reader,
                          Ack* reply) override;
};

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_BENCH_SERVICE_H_
