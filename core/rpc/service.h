// File: core/rpc/service.h
//
// Service: a set of methods a Server serves, each a handler over bytes that
// runs on a worker thread, or on the server's reactor thread: a unary
// method marked with RunInline, or any method given a reactor with
// ServeOnReactor. Generated code (protoc-gen-vrpc) derives from
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
  // Makes the reactor that serves one call (ServeOnReactor); null fails
  // the call with INTERNAL. Reactor thread.
  using ReactorFactory = std::function<std::unique_ptr<ServerCallReactor>(ServerCall& call)>;

  struct Method {
    std::string name;  // "/package.Service/Method"
    MethodKind kind;
    Handler handler;
    // Run on the reactor thread once the request is complete (RunInline).
    bool run_inline = false;
    // When set, calls are served by reactors it makes instead of |handler|.
    ReactorFactory reactor;
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

  // Serves method |name| (any kind) with reactors made by |factory|, on the
  // server's reactor thread: no worker thread and no thread hand-off per
  // message, which is what a stream of large or many messages wants when
  // its processing is short. The same rule as RunInline: the reactor's
  // callbacks must never block. stub.h has typed reactors
  // (ServerReadReactor, ServerBidiReactor). kNotFound for an unknown
  // method. Call before the service is registered with a server.
  absl::Status ServeOnReactor(absl::string_view name, ReactorFactory factory);

 protected:
  void AddMethod(std::string name, MethodKind kind, Handler handler) {
    methods_.push_back(std::make_unique<Method>(Method{std::move(name), kind, std::move(handler)}));
  }

 private:
  // The method called |name| ("Echo" or "/pkg.Svc/Echo"), or null.
  Method* Find(absl::string_view name);

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
