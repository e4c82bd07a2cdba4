// File: tests/bench/bench_service.cc
#include "tests/bench/bench_service.h"

#include <cstdlib>

namespace vrpc {
namespace bench {

BenchServiceImpl::BenchServiceImpl(bool inline_unary) {
  if (!inline_unary) return;
  for (const char* method : {"Echo", "Sink"}) {
    if (absl::Status s = RunInline(method); !s.ok()) std::abort();  // bench.proto changed
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
