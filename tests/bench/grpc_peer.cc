// File: tests/bench/grpc_peer.cc
//
// The gRPC process of the comparison (Debian's grpc++), as vrpc_peer:
//   grpc_peer --role=server --listen=unix:PATH   prints "ready ADDR", serves
//       GrpcBench until SIGTERM/SIGINT.
//   grpc_peer --role=client --target=unix:PATH   runs the memory workload
//       (rss_workload.h), prints "ready rss_kb=N hwm_kb=N".
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "tests/bench/bench.pb.h"
#include "tests/bench/child_process.h"
#include "tests/bench/grpc_bench.grpc.pb.h"
#include "tests/bench/grpc_client.h"
#include "tests/bench/rss_workload.h"

ABSL_FLAG(std::string, role, "server", "server or client");
ABSL_FLAG(std::string, listen, "", "server: gRPC address to serve (unix:PATH)");
ABSL_FLAG(std::string, target, "", "client: gRPC address to call");

namespace vrpc {
namespace bench {
namespace {

class GrpcBenchImpl final : public GrpcBench::Service {
  grpc::Status Echo(grpc::ServerContext* context, const Blob* request, Blob* reply) override {
    reply->set_data(request->data());
    return grpc::Status::OK;
  }
  grpc::Status Sink(grpc::ServerContext* context, const Blob* request, Ack* reply) override {
    reply->set_bytes(request->data().size());
    return grpc::Status::OK;
  }
  grpc::Status StreamSink(grpc::ServerContext* context, grpc::ServerReader<Blob>* reader,
                          Ack* reply) override {
    Blob blob;
    uint64_t total = 0;
    while (reader->Read(&blob)) total += blob.data().size();
    reply->set_bytes(total);
    return grpc::Status::OK;
  }
};

int Serve() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  const std::string address = absl::GetFlag(FLAGS_listen);
  GrpcBenchImpl service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::printf("error gRPC could not listen on %s\n", address.c_str());
    return 1;
  }
  std::printf("ready %s\n", address.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

int Client() {
  auto client = GrpcClient::Connect(absl::GetFlag(FLAGS_target), absl::Seconds(20));
  if (!client.ok()) {
    std::printf("error %s\n", client.status().ToString().c_str());
    return 1;
  }
  return RunRssWorkload(**client);
}

}  // namespace
}  // namespace bench
}  // namespace vrpc

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return absl::GetFlag(FLAGS_role) == "client" ? vrpc::bench::Client() : vrpc::bench::Serve();
}
