// File: host_agent/gateway.cc
//
// One Forward reactor per gRPC call, bridging grpc++'s callback API to a
// vrpc ClientCall. Each side keeps one operation in flight and the other
// side's flow control is honoured: a gRPC read is started only after vrpc
// took the previous message, and a vrpc message is Consume()d only after
// gRPC wrote it. The reactor lives until both gRPC (OnDone) and vrpc
// (OnFinish) are done with it.
#include "host_agent/gateway.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/logging.h"
#include "core/rpc/client_call.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"

namespace vrpc {
namespace host_agent {
namespace {

SliceChain FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  SliceChain out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.Append(Slice::Copy(absl::string_view(reinterpret_cast<const char*>(s.begin()), s.size())));
  }
  return out;
}

grpc::ByteBuffer ToByteBuffer(const SliceChain& chain) {
  std::vector<grpc::Slice> slices;
  for (const Slice& s : chain.slices()) slices.emplace_back(s.data(), s.size());
  return grpc::ByteBuffer(slices.data(), slices.size());
}

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

bool ForwardedKey(absl::string_view key) {
  return !absl::StartsWith(key, ":") && !absl::StartsWith(key, "grpc-") && key != kVmMetadataKey &&
         key != "user-agent" && key != "content-type" && key != "te";
}

class Forward final : public grpc::ServerGenericBidiReactor, private rpc::ClientCallObserver {
 public:
  Forward(grpc::GenericCallbackServerContext* ctx, Directory& directory) : ctx_(ctx) {
    std::string vm;
    for (const auto& [k, v] : ctx->client_metadata()) {
      const std::string key(k.data(), k.size());
      const std::string value(v.data(), v.size());
      if (key == kVmMetadataKey) {
        vm = value;
      } else if (ForwardedKey(key)) {
        vctx_.AddMetadata(key, value);
      }
    }
    if (vm.empty()) {
      FinishEarly(absl::InvalidArgumentError(
          absl::StrCat("name the VM with the \"", kVmMetadataKey, "\" metadata")));
      return;
    }
    absl::StatusOr<std::shared_ptr<rpc::Channel>> channel = directory.Channel(vm);
    if (!channel.ok()) {
      FinishEarly(channel.status());
      return;
    }
    const auto deadline = ctx->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      vctx_.set_deadline(absl::FromChrono(deadline));
    }
    vrpc_pending_ = true;
    call_ = rpc::ClientCall::Start(*channel, ctx->method(), &vctx_, this);
    StartRead(&in_);
  }

  // ---- gRPC side (grpc++ threads) ----

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or the call ended)
      call_->WritesDone();
      return;
    }
    call_->Write(FromByteBuffer(in_));  // OnWriteDone (vrpc) starts the next read
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (ok && !out_.empty()) {
      const size_t consumed = out_.front().second;
      out_.pop_front();
      lock.unlock();
      call_->Consume(consumed);
      lock.lock();
    }
    PumpLocked(lock);
  }

  void OnCancel() override {
    if (call_ != nullptr) call_->Cancel();
  }

  void OnDone() override { Release(/*grpc=*/true); }

 private:
  // ---- vrpc side (the channel's reactor thread) ----

  void OnInitialMetadata(const rpc::Metadata& metadata) override {
    std::unique_lock<std::mutex> lock(mu_);
    for (const auto& [k, v] : metadata) {
      if (ForwardedKey(k)) ctx_->AddInitialMetadata(k, v);
    }
  }

  void OnMessage(SliceChain message) override {
    std::unique_lock<std::mutex> lock(mu_);
    const size_t size = message.size();
    out_.emplace_back(ToByteBuffer(message), size);
    PumpLocked(lock);
  }

  void OnWriteDone(const absl::Status& status) override {
    if (status.ok()) StartRead(&in_);
  }

  void OnFinish(const absl::Status& status, const rpc::Metadata& trailers) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (const auto& [k, v] : trailers) {
        if (ForwardedKey(k)) ctx_->AddTrailingMetadata(k, v);
      }
      final_ = status;
      finished_ = true;
      PumpLocked(lock);
    }
    Release(/*grpc=*/false);
  }

  // Starts the next gRPC write, or finishes once every message is out.
  void PumpLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finish_sent_) return;
    if (!out_.empty()) {
      writing_ = true;
      StartWrite(&out_.front().first);
      return;
    }
    if (finished_) {
      finish_sent_ = true;
      Finish(ToGrpc(final_));
    }
  }

  void FinishEarly(const absl::Status& status) {
    finish_sent_ = true;
    Finish(ToGrpc(status));
  }

  // Deletes this once gRPC is done and vrpc (if a call was started) too.
  void Release(bool grpc) {
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      (grpc ? grpc_done_ : vrpc_done_) = true;
      last = grpc_done_ && (vrpc_done_ || !vrpc_pending_);
    }
    if (last) delete this;
  }

  grpc::GenericCallbackServerContext* const ctx_;
  rpc::ClientContext vctx_;
  std::shared_ptr<rpc::ClientCall> call_;
  grpc::ByteBuffer in_;

  std::mutex mu_;
  std::deque<std::pair<grpc::ByteBuffer, size_t>> out_;  // message, vrpc bytes to consume
  bool writing_ = false;
  bool finished_ = false;
  bool finish_sent_ = false;
  absl::Status final_;
  bool vrpc_pending_ = false;
  bool grpc_done_ = false;
  bool vrpc_done_ = false;
};

class ForwardService final : public grpc::CallbackGenericService {
 public:
  explicit ForwardService(Directory& directory) : directory_(directory) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Forward(ctx, directory_);
  }

 private:
  Directory& directory_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const std::string& path,
                                                        Directory& directory) {
  if (path.empty() || path.size() > 107) {
    return absl::InvalidArgumentError(absl::StrCat("gateway socket path \"", path, "\""));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  std::unique_ptr<Gateway> g(new Gateway());
  g->path_ = path;
  g->service_ = std::make_unique<ForwardService>(directory);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(g->service_.get());
  // The guest enforces its own limits; the gateway passes up to 64 MiB.
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  g->server_ = builder.BuildAndStart();
  if (g->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on unix:", path));
  }
  return g;
}

Gateway::~Gateway() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  }
  ::unlink(path_.c_str());
}

}  // namespace host_agent
}  // namespace vrpc
