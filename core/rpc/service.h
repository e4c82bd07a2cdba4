// File: core/rpc/service.h
//
// Service: a set of methods a Server serves, each a handler over bytes that
// runs on a worker thread, or, for unary methods marked with RunInline, on
// the server's reactor thread. Generated code (protoc-gen-vrpc) derives from
// it and registers typed handlers through stub.h's adapters; hand-written
// services may call AddMethod directly.
#ifndef VRPC_CORE_RPC_SERVICE_H_
#define VRPC_CORE_RPC_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/rpc/server_call.h"

namespace vrpc {
namespace rpc {

enum class MethodKind { kUnary, kClientStreaming, kServerStreaming, kBidiStreaming };

class Service {
 public:
  // Reads requests and writes responses through the call; the returned
  // status ends the call.
  using Handler = std::function<absl::Status(ServerCall& call)>;

  struct Method {
    std::string name;  // "/package.Service/Method"
    MethodKind kind;
    Handler handler;
    // Run on the reactor thread once the request is complete (RunInline).
    bool run_inline = false;
  };

  virtual ~Service() = default;

  const std::vector<std::unique_ptr<Method>>& methods() const { return methods_; }

  // Runs the unary method |name| ("Echo" or "/pkg.Svc/Echo") on the
  // server's reactor thread, as soon as its request has arrived, instead of
  // on a worker thread. That saves the two thread hand-offs which dominate a
  // small call's latency and call rate. Only for handlers that never block:
  // no waiting on locks, I/O, sleeps or other calls, since a blocked
  // handler stalls every connection on that reactor. A response larger
  // than the client's window is queued and sent as the window opens.
  // kNotFound for an unknown method, kInvalidArgument for a streaming one.
  // Call before the service is registered with a server.
  absl::Status RunInline(absl::string_view name);

 protected:
  void AddMethod(std::string name, MethodKind kind, Handler handler) {
    methods_.push_back(std::make_unique<Method>(Method{std::move(name), kind, std::move(handler)}));
  }

 private:
  std::vector<std::unique_ptr<Method>> methods_;
};

// A service assembled at run time (tests, proxies).
class GenericService : public Service {
 public:
  using Service::AddMethod;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_SERVICE_H_
