// File: tests/bench/bench_service.cc
#include "tests/bench/bench_service.h"

#include <cstdlib>
#include <memory>

#include "core/rpc/reactors.h"

namespace vrpc {
namespace bench {

namespace {

// StreamSink on the reactor: counts the bytes.
class SinkReactor final : public rpc::ServerReadReactor<Blob, Ack> {
 public:
  absl::Status OnRead(const Blob& blob) override {
    total_ += blob.data().size();
    return absl::OkStatus();
  }
  absl::Status OnReadsDone(Ack* reply) override {
    reply->set_bytes(total_);
    return absl::OkStatus();
  }

 private:
  uint64_t total_ = 0;
};

}  // namespace

BenchServiceImpl::BenchServiceImpl(bool inline_unary, bool reactor_streaming) {
  // An error here means bench.proto changed.
  if (reactor_streaming &&
      !ServeOnReactor("StreamSink", rpc::ReadReactorFactory<Blob, Ack>([](rpc::ServerContext*) {
         return std::make_unique<SinkReactor>();
       })).ok()) {
    std::abort();
  }
  if (!inline_unary) return;
  for (const char* method : {"Echo", "Sink"}) {
    if (absl::Status s = RunInline(method); !s.ok()) std::abort();
  }
}

absl::Status BenchServiceImpl::Echo(rpc::ServerContext* context, const Blob* request,
                                    Blob* reply) {
  reply->set_data(request->data());
  return absl::OkStatus();
}

absl::Status BenchServiceImpl::Sink(rpc::ServerContext* context, const Blob* request,
                                    Ack* reply) {
  reply->set_bytes(request->data().size());
  return absl::OkStatus();
}

absl::Status BenchServiceImpl::StreamSink(rpc::ServerContext* context,
                                          rpc::ServerReader<Blob>* reader, Ack* reply) {
  Blob blob;
  uint64_t total = 0;
  while (reader->Read(&blob)) total += blob.data().size();
  reply->set_bytes(total);
  return absl::OkStatus();
}

}  // namespace bench
}  // namespace vrpc
