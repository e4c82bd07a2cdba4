// File: core/rpc/health/health_service.h
//
// HealthService: grpc.health.v1.Health for a vrpc Server, so orchestrators'
// standard health checks apply. Check answers the status set for a service
// name ("" is the server as a whole; NOT_FOUND for names never set); Watch
// streams the current status and then every change until the client goes.
//
// Check runs inline on the server's loop (Service::RunInline), so it is
// answered even when every worker is taken; Watch runs on a worker.
//
// Thread-safe: SetServingStatus may be called from any thread.
#ifndef VRPC_CORE_RPC_HEALTH_HEALTH_SERVICE_H_
#define VRPC_CORE_RPC_HEALTH_HEALTH_SERVICE_H_

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "proto/health/health.vrpc.pb.h"

namespace vrpc {
namespace rpc {

class HealthService final : public ::grpc::health::v1::Health::Service {
 public:
  using Status = ::grpc::health::v1::HealthCheckResponse::ServingStatus;

  // The server as a whole starts SERVING.
  HealthService();

  void SetServingStatus(const std::string& service, Status status);
  // Every service NOT_SERVING, and Watch streams end (server shutdown).
  void Shutdown();

  absl::Status Check(ServerContext* context,
                     const ::grpc::health::v1::HealthCheckRequest* request,
                     ::grpc::health::v1::HealthCheckResponse* response) override;
  absl::Status Watch(ServerContext* context,
                     const ::grpc::health::v1::HealthCheckRequest* request,
                     ServerWriter<::grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Status> statuses_;
  uint64_t version_ = 0;
  bool shutdown_ = false;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_HEALTH_HEALTH_SERVICE_H_
