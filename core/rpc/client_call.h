// File: core/rpc/client_call.h
//
// ClientCall: one call on a Channel, generic over bytes, with a callback
// API. The typed, blocking stubs (stub.h) are built on it.
//
//   auto call = ClientCall::Start(channel, "/pkg.Svc/Method", &ctx, &observer);
//   call->Write(bytes);      // OnWriteDone(status) when the call took it
//   call->WritesDone();      // half-close
//   ... OnMessage(bytes) -> call->Consume(bytes.size()) when processed ...
//   ... OnFinish(status, trailers), exactly once.
//
// Flow control: one Write at a time is taken (wait for OnWriteDone before the
// next); Consume() returns window to the server. Messages are views of the
// transport's buffers: hold them only as long as needed.
//
// Deadlines come from the context; TryCancel() on the context, Cancel() here,
// or the deadline end the call with CANCELLED / DEADLINE_EXCEEDED, and the
// server is told (CANCEL).
//
// Threading: methods are thread-safe; observer callbacks run on the
// channel's reactor thread and must not block.
#ifndef VRPC_CORE_RPC_CLIENT_CALL_H_
#define VRPC_CORE_RPC_CLIENT_CALL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "core/buffer/message_queue.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"
#include "core/rpc/channel.h"
#include "core/rpc/context.h"
#include "core/rpc/frame.h"

namespace vrpc {
namespace rpc {

class ClientCallObserver {
 public:
  virtual ~ClientCallObserver() = default;
  virtual void OnInitialMetadata(const Metadata& metadata) {}
  virtual void OnMessage(SliceChain message) = 0;
  virtual void OnWriteDone(const absl::Status& status) {}
  // Exactly once; nothing follows.
  virtual void OnFinish(const absl::Status& status, const Metadata& trailers) = 0;
};

class ClientCall : public std::enable_shared_from_this<ClientCall> {
 public:
  // |context| and |observer| must outlive OnFinish. |first_message| (and
  // |writes_done|) are sent with the call's HEADERS in one transport write:
  // what a unary call wants.
  static std::shared_ptr<ClientCall> Start(const std::shared_ptr<Channel>& channel,
                                           std::string method, ClientContext* context,
                                           ClientCallObserver* observer,
                                           std::optional<SliceChain> first_message = {},
                                           bool writes_done = false);
  // Start in two steps: the call exists (idle) before Begin starts it, so an
  // owner can hold it before any observer callback may run. Begin once.
  static std::shared_ptr<ClientCall> Create(const std::shared_ptr<Channel>& channel,
                                            std::string method, ClientContext* context,
                                            ClientCallObserver* observer,
                                            std::optional<SliceChain> first_message = {},
                                            bool writes_done = false);
  void Begin();

  void Write(SliceChain message);
  void WritesDone();
  void Cancel() { CancelWith(absl::CancelledError("cancelled by the client")); }
  void Consume(size_t bytes);

 private:
  friend class Channel;
  enum class Phase { kWaiting, kActive, kDone };

  ClientCall(std::shared_ptr<Channel> channel, std::string method, ClientContext* context,
             ClientCallObserver* observer);

  // ---- Reactor thread ----
  void BeginOnLoop();                 // deadline timer, queue on the channel
  void Activate(uint32_t stream);     // the channel opened our stream
  void TrySend();                     // pending write / half-close
  void OnEvent(SessionEvent& e);      // from the channel
  void CancelWith(const absl::Status& why);  // thread-safe entry
  void Finish(const absl::Status& status, const Metadata& trailers);

  std::shared_ptr<Channel> channel_;
  std::string method_;  // until the call starts: then the HEADERS frame took it
  ClientContext* const context_;
  ClientCallObserver* const observer_;

  Phase phase_ = Phase::kWaiting;
  uint32_t stream_ = 0;
  MessageQueue writes_;  // not yet taken by the session
  bool writes_done_ = false;
  bool half_closed_ = false;
  io::TimerId deadline_timer_ = 0;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_CLIENT_CALL_H_
