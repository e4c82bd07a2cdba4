// File: tests/rpc/test_service.cc
#include "tests/rpc/test_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "core/buffer/message_queue.h"
#include "core/rpc/server_call.h"

namespace vrpc {
namespace rpc_testing {

using namespace ::vrpc::rpc;  // NOLINT

SliceChain Bytes(const std::string& s) { return SliceChain(Slice::Copy(s)); }

namespace {

// Counts itself in the service's reactors_made / reactors_destroyed.
class CountedReactor : public ServerCallReactor {
 public:
  explicit CountedReactor(TestService* service) : service_(service) {
    service_->reactors_made.fetch_add(1);
  }
  ~CountedReactor() override { service_->reactors_destroyed.fetch_add(1); }

 protected:
  TestService* const service_;
};

// SumOnLoop: the total size of the requests.
class SumReactor final : public CountedReactor {
 public:
  using CountedReactor::CountedReactor;
  void OnMessage(ServerCall&, SliceChain message) override { total_ += message.size(); }
  void OnReadsDone(ServerCall& call) override {
    (void)call.Write(Bytes(std::to_string(total_)));
    call.Finish(absl::OkStatus());
  }

 private:
  size_t total_ = 0;
};

// BidiOnLoop: "re:" + each request, in order, one StartWrite at a time;
// finishes once the client half-closed and every reply went.
class BidiReactor final : public CountedReactor {
 public:
  using CountedReactor::CountedReactor;
  void OnMessage(ServerCall& call, SliceChain message) override {
    outbox_.push_back(Bytes("re:" + message.ToString()));
    if (!writing_) WriteNext(call);
  }
  void OnReadsDone(ServerCall& call) override {
    reads_done_ = true;
    if (!writing_) WriteNext(call);
  }
  void OnWriteDone(ServerCall& call, const absl::Status& status) override {
    writing_ = false;
    if (!status.ok()) return call.Finish(status);
    WriteNext(call);
  }

 private:
  void WriteNext(ServerCall& call) {
    if (outbox_.empty()) {
      if (reads_done_) call.Finish(absl::OkStatus());
      return;
    }
    writing_ = true;
    call.StartWrite(outbox_.pop_front());
  }
  MessageQueue outbox_;
  bool writing_ = false;
  bool reads_done_ = false;
};

// HangOnLoop: takes messages, never finishes.
class HangReactor final : public CountedReactor {
 public:
  using CountedReactor::CountedReactor;
  void OnMessage(ServerCall&, SliceChain) override {}
  void OnReadsDone(ServerCall&) override {}
  void OnCancel(ServerCall&) override { service_->reactor_cancels.fetch_add(1); }
};

}  // namespace

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
  AddMethod("/test.Svc/SumOnLoop", MethodKind::kClientStreaming, nullptr);
  AddMethod("/test.Svc/BidiOnLoop", MethodKind::kBidiStreaming, nullptr);
  AddMethod("/test.Svc/HangOnLoop", MethodKind::kBidiStreaming, nullptr);
  (void)ServeOnReactor("SumOnLoop",
                       [this](ServerCall&) { return std::make_unique<SumReactor>(this); });
  (void)ServeOnReactor("BidiOnLoop",
                       [this](ServerCall&) { return std::make_unique<BidiReactor>(this); });
  (void)ServeOnReactor("HangOnLoop",
                       [this](ServerCall&) { return std::make_unique<HangReactor>(this); });
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
