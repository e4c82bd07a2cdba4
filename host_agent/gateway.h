// File: host_agent/gateway.h
//
// Gateway: a standard gRPC server (Debian's grpc++) on a Unix socket that
// forwards any call to a guest agent, so an orchestrator in Go, Python or
// any gRPC language reaches guests without linking vrpc. The metadata key
// "vrpc-vm" names the VM (a Directory name); the method, the messages
// (opaque bytes), the other metadata, the deadline, cancellation and the
// final status pass through unchanged in both directions, for every call
// kind. vrpc status codes are gRPC's, so a guest's PERMISSION_DENIED is the
// gateway client's PERMISSION_DENIED.
//
//   grpcurl -unix -plaintext -H 'vrpc-vm: vm1' /run/vrpc/gateway.sock vrpc.agent.Agent/SystemInfo
//
// Errors of its own: INVALID_ARGUMENT without "vrpc-vm", NOT_FOUND for an
// unknown VM, UNAVAILABLE when the guest cannot be reached.
#ifndef VRPC_HOST_AGENT_GATEWAY_H_
#define VRPC_HOST_AGENT_GATEWAY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "host_agent/directory.h"

namespace grpc {
class Server;
class CallbackGenericService;
}  // namespace grpc

namespace vrpc {
namespace host_agent {

inline constexpr char kVmMetadataKey[] = "vrpc-vm";

class Gateway {
 public:
  // Serves on the Unix socket |path| (replacing a stale socket file).
  // |directory| must outlive the gateway.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const std::string& path,
                                                        Directory& directory);
  // Cancels running calls and stops serving.
  ~Gateway();

  const std::string& path() const { return path_; }

 private:
  Gateway() = default;
  std::string path_;
  std::unique_ptr<grpc::CallbackGenericService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace host_agent
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_GATEWAY_H_
