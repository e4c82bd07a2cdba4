// File: examples/echo/echo_service.h
//
// The Echo service (proto/echo/echo.proto) the example server runs, and the
// payload pattern its client sends and checks.
#ifndef VRPC_EXAMPLES_ECHO_ECHO_SERVICE_H_
#define VRPC_EXAMPLES_ECHO_ECHO_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "proto/echo/echo.pb.h"
#include "proto/echo/echo.vrpc.pb.h"

namespace vrpc {
namespace echo_example {

// Bounds a client cannot push the server past: replies per ServerStream
// call, and the bytes a ClientStream call may accumulate (its one reply
// must fit a message).
inline constexpr uint32_t kMaxStreamReplies = 1 << 20;
inline constexpr size_t kMaxAccumulated = 4 << 20;

class EchoServiceImpl final : public echo::Echo::Service {
 public:
  // The payload back; sequence 0.
  absl::Status Unary(rpc::ServerContext* context, const echo::EchoRequest* request,
                     echo::EchoReply* reply) override;
  // |count| replies with the payload, sequence 0..count-1. INVALID_ARGUMENT
  // above kMaxStreamReplies.
  absl::Status ServerStream(rpc::ServerContext* context, const echo::EchoRequest* request,
                            rpc::ServerWriter<echo::EchoReply>* writer) override;
  // The payloads concatenated, sequence = how many. RESOURCE_EXHAUSTED once
  // they exceed kMaxAccumulated (before holding more).
  absl::Status ClientStream(rpc::ServerContext* context,
                            rpc::ServerReader<echo::EchoRequest>* reader,
                            echo::EchoReply* reply) override;
  // One reply per request, in order, sequence 0, 1, ...
  absl::Status Bidi(rpc::ServerContext* context,
                    rpc::ServerReaderWriter<echo::EchoReply, echo::EchoRequest>* stream) override;
};

// |size| bytes that depend on |seed| and on each position, so a reply that
// is truncated, shifted or from another request does not match.
std::string Pattern(size_t size, uint64_t seed);

}  // namespace echo_example
}  // namespace vrpc

#endif  // VRPC_EXAMPLES_ECHO_ECHO_SERVICE_H_
