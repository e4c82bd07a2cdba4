// File: tests/rpc/test_service.cc
#include "tests/rpc/test_service.h"

#include <chrono>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "core/rpc/server_call.h"

namespace vrpc {
namespace rpc_testing {

using namespace ::vrpc::rpc;  // NOLINT

SliceChain Bytes(const std::string& s) { return SliceChain(Slice::Copy(s)); }

TestService::TestService() {
  AddMethod("/test.Svc/Echo", MethodKind::kUnary, [](ServerCall& call) {
    SliceChain req;
    if (!call.Read(&req)) return absl::InvalidArgumentError("no request");
    for (const auto& [k, v] : call.context().client_metadata()) {
      call.context().AddInitialMetadata("echo-" + k, v);
      call.context().AddTrailingMetadata("trailer-" + k, v);
    }
    return call.Write(std::move(req));  // the same Slices: no copy
  });
  AddMethod("/test.Svc/Fail", MethodKind::kUnary, [](ServerCall& call) {
    SliceChain req;
    call.Read(&req);
    return absl::NotFoundError("no such thing: " + req.ToString());
  });
  AddMethod("/test.Svc/Count", MethodKind::kServerStreaming, [](ServerCall& call) {
    SliceChain req;
    if (!call.Read(&req)) return absl::InvalidArgumentError("no request");
    const int n = std::stoi(req.ToString());
    for (int i = 0; i < n; ++i) {
      if (absl::Status s = call.Write(Bytes(std::to_string(i))); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  AddMethod("/test.Svc/Abort", MethodKind::kServerStreaming, [](ServerCall& call) {
    SliceChain req;
    call.Read(&req);
    if (absl::Status s = call.Write(Bytes("first")); !s.ok()) return s;
    return absl::CancelledError("the server gave up");
  });
  AddMethod("/test.Svc/Sum", MethodKind::kClientStreaming, [](ServerCall& call) {
    size_t total = 0;
    SliceChain m;
    while (call.Read(&m)) total += m.size();
    return call.Write(Bytes(std::to_string(total)));
  });
  AddMethod("/test.Svc/Bidi", MethodKind::kBidiStreaming, [](ServerCall& call) {
    SliceChain m;
    while (call.Read(&m)) {
      if (absl::Status s = call.Write(Bytes("re:" + m.ToString())); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  AddMethod("/test.Svc/Probe", MethodKind::kUnary, [this](ServerCall& call) {
    SliceChain req;
    if (!call.Read(&req)) return absl::InvalidArgumentError("no request");
    probe_first_byte = req.slices().empty() ? nullptr : req.slices()[0].data();
    probe_size = req.size();
    return call.Write(Bytes("ok"));
  });
  AddMethod("/test.Svc/Hang", MethodKind::kBidiStreaming, [this](ServerCall& call) {
    // Never reads; waits to be cancelled.
    hang_started.fetch_add(1);
    while (!call.context().IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    hang_cancelled.fetch_add(1);
    return absl::OkStatus();
  });
}

}  // namespace rpc_testing
}  // namespace vrpc
