// File: core/rpc/service.h
//
// Service: a set of methods a Server serves, each a handler over bytes that
// runs on a worker thread. Generated code (protoc-gen-vrpc) derives from it
// and registers typed handlers through stub.h's adapters; hand-written
// services may call AddMethod directly.
#ifndef VRPC_CORE_RPC_SERVICE_H_
#define VRPC_CORE_RPC_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
  };

  virtual ~Service() = default;

  const std::vector<std::unique_ptr<Method>>& methods() const { return methods_; }

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
