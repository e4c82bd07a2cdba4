#include "core/rpc/health/health_service.h"

#include <chrono>
#include <cstdlib>

namespace vrpc {
namespace rpc {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

HealthService::HealthService() {
  statuses_[""] = HealthCheckResponse::SERVING;
  // Check is a lookup under a short lock: it runs on the server's loop, so
  // health checks are answered even while every worker thread is busy.
  if (!RunInline("Check").ok()) std::abort();  // health.proto has Check
}

void HealthService::SetServingStatus(const std::string& service, Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) status = HealthCheckResponse::NOT_SERVING;
    statuses_[service] = status;
    ++version_;
  }
  cv_.notify_all();
}

void HealthService::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
    ++version_;
  }
  cv_.notify_all();
}

absl::Status HealthService::Check(ServerContext*, const HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = statuses_.find(request->service());
  if (it == statuses_.end()) {
    return absl::NotFoundError("unknown service \"" + request->service() + "\"");
  }
  response->set_status(it->second);
  return absl::OkStatus();
}

absl::Status HealthService::Watch(ServerContext* context, const HealthCheckRequest* request,
                                  ServerWriter<HealthCheckResponse>* writer) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t seen = ~uint64_t{0};
  Status last = HealthCheckResponse::UNKNOWN;
  bool first = true;
  while (!context->IsCancelled()) {
    if (version_ != seen) {
      seen = version_;
      auto it = statuses_.find(request->service());
      const Status now = it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
      if (first || now != last) {
        first = false;
        last = now;
        HealthCheckResponse response;
        response.set_status(now);
        lock.unlock();
        const bool ok = writer->Write(response);
        lock.lock();
        if (!ok) break;
      }
      if (shutdown_) break;
    }
    // Wake for changes; poll cancellation (the context has no callback).
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  return absl::OkStatus();
}

}  // namespace rpc
}  // namespace vrpc
