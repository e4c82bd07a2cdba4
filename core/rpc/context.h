// File: core/rpc/context.h
//
// Per-call contexts, as in gRPC C++: ClientContext carries what the client
// sets for one call (deadline, metadata, wait-for-ready) and what it
// receives (the server's initial and trailing metadata); ServerContext is the
// handler's view (deadline, client metadata, metadata to send back,
// cancellation).
//
// A context belongs to one call. ClientContext::TryCancel and
// ServerContext::IsCancelled are thread-safe; the rest is set before the
// call starts (client) or used by the handler's thread (server).
#ifndef VRPC_CORE_RPC_CONTEXT_H_
#define VRPC_CORE_RPC_CONTEXT_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/rpc/frame.h"

namespace vrpc {
namespace rpc {

class ClientContext {
 public:
  ClientContext() = default;
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_timeout(absl::Duration timeout) { deadline_ = absl::Now() + timeout; }
  absl::Time deadline() const { return deadline_; }

  void AddMetadata(std::string key, std::string value) {
    metadata_.emplace_back(std::move(key), std::move(value));
  }
  const Metadata& metadata() const { return metadata_; }

  // Wait for the channel to become READY instead of failing fast with
  // UNAVAILABLE while it is in TRANSIENT_FAILURE.
  void set_wait_for_ready(bool wait) { wait_for_ready_ = wait; }
  bool wait_for_ready() const { return wait_for_ready_; }

  // Cancels the call (CANCELLED, propagated to the server). Thread-safe; a
  // no-op before the call starts or after it ends.
  void TryCancel();

  // Filled in as the call runs.
  const Metadata& server_initial_metadata() const { return initial_; }
  const Metadata& server_trailing_metadata() const { return trailing_; }

  // ---- For the call machinery ----
  // |fn| cancels the running call; it is called at most once, by the first
  // TryCancel (at once if TryCancel came first). Null detaches it.
  void set_canceller(absl::AnyInvocable<void()> fn);
  void set_server_initial_metadata(Metadata m) { initial_ = std::move(m); }
  void set_server_trailing_metadata(Metadata m) { trailing_ = std::move(m); }

 private:
  absl::Time deadline_ = absl::InfiniteFuture();
  Metadata metadata_;
  bool wait_for_ready_ = false;
  Metadata initial_;
  Metadata trailing_;
  std::mutex mu_;
  absl::AnyInvocable<void()> canceller_;  // inline storage: no allocation per call
  bool cancel_requested_ = false;
};

class ServerContext {
 public:
  ServerContext(std::string method, absl::Time deadline, Metadata client_metadata,
                std::string peer)
      : method_(std::move(method)),
        deadline_(deadline),
        client_metadata_(std::move(client_metadata)),
        peer_(std::move(peer)) {}
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  const std::string& method() const { return method_; }
  absl::Time deadline() const { return deadline_; }
  const Metadata& client_metadata() const { return client_metadata_; }
  // The transport address of the client, e.g. "vsock:3:1025".
  const std::string& peer() const { return peer_; }

  // Sent with the first response message (or the trailers).
  void AddInitialMetadata(std::string key, std::string value) {
    initial_.emplace_back(std::move(key), std::move(value));
  }
  void AddTrailingMetadata(std::string key, std::string value) {
    trailing_.emplace_back(std::move(key), std::move(value));
  }
  const Metadata& initial_metadata() const { return initial_; }
  const Metadata& trailing_metadata() const { return trailing_; }

  // True once the client cancelled, the deadline passed, or the connection
  // dropped. Thread-safe.
  bool IsCancelled() const { return cancelled_.load(std::memory_order_acquire); }
  void MarkCancelled() { cancelled_.store(true, std::memory_order_release); }

 private:
  const std::string method_;
  const absl::Time deadline_;
  const Metadata client_metadata_;
  const std::string peer_;
  Metadata initial_;
  Metadata trailing_;
  std::atomic<bool> cancelled_{false};
};

inline void ClientContext::TryCancel() {
  absl::AnyInvocable<void()> fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_requested_ = true;
    fn = std::move(canceller_);
    canceller_ = nullptr;
  }
  if (fn) fn();
}

inline void ClientContext::set_canceller(absl::AnyInvocable<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancel_requested_ || fn == nullptr) {
      canceller_ = std::move(fn);
      return;
    }
    canceller_ = nullptr;
  }
  fn();  // cancelled before the call began
}

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_CONTEXT_H_
