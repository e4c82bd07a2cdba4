// File: tests/bench/grpc_client.cc
#include "tests/bench/grpc_client.h"

#include <chrono>
#include <cstdio>

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "tests/bench/bench.pb.h"
#include "tests/bench/grpc_bench.grpc.pb.h"
#include "tests/bench/stats.h"

namespace vrpc {
namespace bench {
namespace {

void Complain(const char* what, const grpc::Status& s) {
  std::fprintf(stderr, "grpc client: %s: %d %s\n", what, static_cast<int>(s.error_code()),
               s.error_message().c_str());
}

}  // namespace

struct GrpcClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<GrpcBench::Stub> stub;
};

absl::StatusOr<std::unique_ptr<GrpcClient>> GrpcClient::Connect(const std::string& target,
                                                                absl::Duration timeout) {
  std::unique_ptr<GrpcClient> c(new GrpcClient());
  c->impl_ = std::make_unique<Impl>();
  const absl::Time start = absl::Now();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  c->impl_->channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!c->impl_->channel->WaitForConnected(absl::ToChronoTime(start + timeout))) {
    return absl::UnavailableError("gRPC channel to " + target + " not ready");
  }
  c->connect_time_ = absl::Now() - start;
  c->impl_->stub = GrpcBench::NewStub(c->impl_->channel);
  return c;
}

GrpcClient::~GrpcClient() = default;

std::vector<double> GrpcClient::UnaryRttNs(int calls, size_t bytes) {
  Blob request, reply;
  request.set_data(std::string(bytes, 'u'));
  std::vector<double> out;
  out.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext context;
    const Clock::time_point start = Clock::now();
    grpc::Status s = impl_->stub->Echo(&context, request, &reply);
    const double ns = NsSince(start);
    if (!s.ok() || reply.data().size() != bytes) {
      Complain("Echo", s);
      return {};
    }
    out.push_back(ns);
  }
  return out;
}

double GrpcClient::UnaryThroughputGBps(int calls, size_t bytes) {
  Blob request;
  request.set_data(std::string(bytes, 's'));
  Ack ack;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext context;
    grpc::Status s = impl_->stub->Sink(&context, request, &ack);
    if (!s.ok() || ack.bytes() != bytes) {
      Complain("Sink", s);
      return 0;
    }
  }
  return static_cast<double>(bytes) * calls / NsSince(start);
}

double GrpcClient::StreamThroughputGBps(int messages, size_t bytes) {
  Blob request;
  request.set_data(std::string(bytes, 'S'));
  Ack ack;
  grpc::ClientContext context;
  const Clock::time_point start = Clock::now();
  std::unique_ptr<grpc::ClientWriter<Blob>> writer = impl_->stub->StreamSink(&context, &ack);
  for (int i = 0; i < messages; ++i) {
    if (!writer->Write(request)) break;
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  const double ns = NsSince(start);
  if (!s.ok() || ack.bytes() != static_cast<uint64_t>(messages) * bytes) {
    Complain("StreamSink", s);
    return 0;
  }
  return static_cast<double>(bytes) * messages / ns;
}

}  // namespace bench
}  // namespace vrpc
