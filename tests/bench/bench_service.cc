// File: tests/bench/bench_service.cc
#include "tests/bench/bench_service.h"

namespace vrpc {
namespace bench {

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
