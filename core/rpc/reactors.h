// File: core/rpc/reactors.h
//
// The typed callback API for streaming calls: reactors whose methods run on
// a reactor thread, so a stream costs no thread hand-off per message, in the
// shape of gRPC C++'s callback API.
//
// Server (Service::ServeOnReactor; callbacks on the server's reactor thread):
//   ServerReadReactor<Req, Resp>   client streaming: OnRead... OnReadsDone
//   ServerBidiReactor<Req, Resp>   bidi or server streaming: OnRead,
//                                  StartWrite / OnWriteDone, Finish
//   service.ServeOnReactor("Upload", rpc::ReadReactorFactory<Chunk, Summary>(
//       [](rpc::ServerContext* ctx) { return std::make_unique<Upload>(); }));
// Client (callbacks on the channel's reactor thread; generated stubs start
// them: stub->Upload(&ctx, &summary, &reactor)):
//   ClientWriteReactor<Req, Resp>  client streaming: StartWrite / OnWriteDone,
//                                  StartWritesDone, OnDone
//   ClientReadReactor<Resp>        server streaming: OnRead..., OnDone
//   ClientBidiReactor<Req, Resp>   bidi: StartWrite / OnWriteDone, OnRead,
//                                  StartWritesDone, OnDone
//
// The rule of RunInline holds for every callback: it must not block, since
// a blocked callback stalls every call on that reactor. A message is parsed
// from the receive buffers before the callback, which gets the parsed
// message; one that does not parse fails the call with INTERNAL.
#ifndef VRPC_CORE_RPC_REACTORS_H_
#define VRPC_CORE_RPC_REACTORS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/buffer/slice.h"
#include "core/rpc/channel.h"
#include "core/rpc/client_stream.h"
#include "core/rpc/context.h"
#include "core/rpc/proto_codec.h"
#include "core/rpc/server_call.h"
#include "core/rpc/service.h"
#include "core/rpc/stub.h"

namespace vrpc {
namespace rpc {

// ---------------------------------------------------------------------------
// Server

// Client streaming. One reactor per call, made by the factory given to
// ReadReactorFactory and destroyed some time after the call ended.
template <typename Req, typename Resp>
class ServerReadReactor {
 public:
  virtual ~ServerReadReactor() = default;
  // Each request, in order. A non-OK status ends the call with it; no
  // callback follows.
  virtual absl::Status OnRead(const Req& request) = 0;
  // The client sent its last request: fill |response|. The status ends the
  // call (the response goes only with OK).
  virtual absl::Status OnReadsDone(Resp* response) = 0;
  // The call was cancelled first (client, deadline, connection lost,
  // server shutdown). No callback follows.
  virtual void OnCancel() {}
};

// Bidi streaming, and server streaming (one OnRead, then OnReadsDone).
// The reactor answers with StartWrite and ends the call with Finish.
template <typename Req, typename Resp>
class ServerBidiReactor {
 public:
  virtual ~ServerBidiReactor() = default;
  // Each request, in order.
  virtual void OnRead(const Req& request) = 0;
  // The client sends no more requests.
  virtual void OnReadsDone() = 0;
  // The write begun by StartWrite went out (true) or could not.
  virtual void OnWriteDone(bool ok) {}
  // The call was cancelled before Finish. No callback follows.
  virtual void OnCancel() {}

 protected:
  ServerContext& context() { return call_->context(); }
  // Sends |response|, or queues it until the client's window opens;
  // OnWriteDone follows, never from inside StartWrite. One write at a
  // time: wait for OnWriteDone before the next.
  void StartWrite(const Resp& response) {
    SliceChain out;
    if (absl::Status s = Serialize(response, &out, call_->write_allocator()); !s.ok()) {
      return call_->Finish(absl::InternalError(s.message()));
    }
    call_->StartWrite(std::move(out));
  }
  // Ends the call with |status|, after a write still waiting for the window.
  // Callbacks may follow only for work already under way: none after the
  // trailers are sent.
  void Finish(const absl::Status& status) { call_->Finish(status); }

 private:
  template <typename, typename>
  friend class BidiReactorAdapter;
  ServerCall* call_ = nullptr;  // owns this reactor (through the adapter)
};

// The ServerCallReactors that parse for the typed ones.
template <typename Req, typename Resp>
class ReadReactorAdapter final : public ServerCallReactor {
 public:
  ReadReactorAdapter(ServerCall&, std::unique_ptr<ServerReadReactor<Req, Resp>> reactor)
      : reactor_(std::move(reactor)) {}
  void OnMessage(ServerCall& call, SliceChain message) override {
    if (!Parse(message, &request_).ok()) {
      return call.Finish(internal::BadRequest());
    }
    if (absl::Status s = reactor_->OnRead(request_); !s.ok()) call.Finish(s);
  }
  void OnReadsDone(ServerCall& call) override {
    Resp response;
    absl::Status status = reactor_->OnReadsDone(&response);
    if (status.ok()) status = internal::WriteResponse(call, response);  // sent or queued
    call.Finish(status);
  }
  void OnCancel(ServerCall&) override { reactor_->OnCancel(); }

 private:
  const std::unique_ptr<ServerReadReactor<Req, Resp>> reactor_;
  Req request_;  // reused: a parse replaces its contents
};

template <typename Req, typename Resp>
class BidiReactorAdapter final : public ServerCallReactor {
 public:
  BidiReactorAdapter(ServerCall& call, std::unique_ptr<ServerBidiReactor<Req, Resp>> reactor)
      : reactor_(std::move(reactor)) {
    reactor_->call_ = &call;
  }
  void OnMessage(ServerCall& call, SliceChain message) override {
    if (!Parse(message, &request_).ok()) {
      return call.Finish(internal::BadRequest());
    }
    reactor_->OnRead(request_);
  }
  void OnReadsDone(ServerCall&) override { reactor_->OnReadsDone(); }
  void OnWriteDone(ServerCall&, const absl::Status& status) override {
    reactor_->OnWriteDone(status.ok());
  }
  void OnCancel(ServerCall&) override { reactor_->OnCancel(); }

 private:
  const std::unique_ptr<ServerBidiReactor<Req, Resp>> reactor_;
  Req request_;
};

// Wraps each typed reactor |make| returns in an Adapter.
template <typename Adapter, typename Typed>
Service::ReactorFactory AdaptedFactory(
    std::function<std::unique_ptr<Typed>(ServerContext*)> make) {
  return [make = std::move(make)](ServerCall& call) -> std::unique_ptr<ServerCallReactor> {
    std::unique_ptr<Typed> reactor = make(&call.context());
    if (reactor == nullptr) return nullptr;
    return std::make_unique<Adapter>(call, std::move(reactor));
  };
}

// What Service::ServeOnReactor takes, from a factory of typed reactors
// (called on the reactor thread as each call starts; null fails the call
// with INTERNAL).
template <typename Req, typename Resp>
Service::ReactorFactory ReadReactorFactory(
    std::function<std::unique_ptr<ServerReadReactor<Req, Resp>>(ServerContext*)> make) {
  return AdaptedFactory<ReadReactorAdapter<Req, Resp>>(std::move(make));
}

template <typename Req, typename Resp>
Service::ReactorFactory BidiReactorFactory(
    std::function<std::unique_ptr<ServerBidiReactor<Req, Resp>>(ServerContext*)> make) {
  return AdaptedFactory<BidiReactorAdapter<Req, Resp>>(std::move(make));
}

// ---------------------------------------------------------------------------
// Client. Each reactor, its context and what it fills must stay valid until
// OnDone, which is the last callback (the reactor may delete itself there).
// Callbacks run on the channel's reactor thread; the Start/TryCancel
// methods may be called from any thread after StartCall. OnWriteDone
// follows each StartWrite, in order (a write may start before the earlier
// ones reported), never from inside StartWrite (except when that write
// itself ends the call, over the server's message limit: then its report
// and OnDone come before StartWrite returns), and reports never nest, so
// the next write may be started from OnWriteDone.

// Client streaming: StartCall, StartWrite / OnWriteDone per request,
// StartWritesDone, then OnDone with the status, and the response parsed
// when it is OK.
template <typename Req, typename Resp>
class ClientWriteReactor : private internal::ClientStream {
 public:
  void StartCall(const std::shared_ptr<Channel>& channel, std::string method,
                 ClientContext* context, Resp* response) {
    response_ = internal::SingleResponse<Resp>(response);
    Begin(channel, std::move(method), context);
  }
  void StartWrite(const Req& request) { WriteMessage(request); }
  // Half-closes once the writes started before it went.
  void StartWritesDone() { WritesDone(); }
  // OnDone(CANCELLED) follows.
  void TryCancel() { Cancel(); }

  virtual void OnWriteDone(bool ok) {}
  virtual void OnDone(const absl::Status& status) = 0;

 private:
  void HandleMessage(const SliceChain& message) final { response_.Take(message); }
  void HandleWriteDone(bool ok) final { OnWriteDone(ok); }
  void HandleDone(const absl::Status& status) final { OnDone(response_.Result(status)); }

  internal::SingleResponse<Resp> response_;
};

// Server streaming: StartCall sends the request, OnRead gets each
// response, OnDone the status. A response that does not parse cancels the
// call, which ends INTERNAL.
template <typename Resp>
class ClientReadReactor : private internal::ClientStream {
 public:
  template <typename Req>
  void StartCall(const std::shared_ptr<Channel>& channel, std::string method,
                 ClientContext* context, const Req& request) {
    SliceChain out;
    if (!SerializeFor(request, &out, *channel).ok()) {
      bad_ = "could not serialize the request";
      Begin(channel, std::move(method), context);
      return Cancel();
    }
    Begin(channel, std::move(method), context, std::move(out), /*writes_done=*/true);
  }
  void TryCancel() { Cancel(); }

  // Each response, in order; its buffers go back to the server's window
  // when this returns.
  virtual void OnRead(const Resp& response) = 0;
  virtual void OnDone(const absl::Status& status) = 0;

 private:
  void HandleMessage(const SliceChain& message) final {
    if (bad_ != nullptr) return;
    if (!Parse(message, &response_).ok()) {
      bad_ = "could not parse a response";
      return Cancel();
    }
    OnRead(response_);
  }
  void HandleDone(const absl::Status& status) final {
    OnDone(bad_ != nullptr ? absl::InternalError(bad_) : status);
  }

  Resp response_;  // reused: a parse replaces its contents
  const char* bad_ = nullptr;
};

// Bidi streaming: StartWrite / OnWriteDone and OnRead interleave as the
// application likes; StartWritesDone half-closes; OnDone ends.
template <typename Req, typename Resp>
class ClientBidiReactor : private internal::ClientStream {
 public:
  void StartCall(const std::shared_ptr<Channel>& channel, std::string method,
                 ClientContext* context) {
    Begin(channel, std::move(method), context);
  }
  void StartWrite(const Req& request) { WriteMessage(request); }
  void StartWritesDone() { WritesDone(); }
  void TryCancel() { Cancel(); }

  virtual void OnRead(const Resp& response) = 0;
  virtual void OnWriteDone(bool ok) {}
  virtual void OnDone(const absl::Status& status) = 0;

 private:
  void HandleMessage(const SliceChain& message) final {
    if (bad_) return;
    if (!Parse(message, &response_).ok()) {
      bad_ = true;
      return Cancel();
    }
    OnRead(response_);
  }
  void HandleWriteDone(bool ok) final { OnWriteDone(ok); }
  void HandleDone(const absl::Status& status) final {
    OnDone(bad_ ? absl::InternalError("could not parse a response") : status);
  }

  Resp response_;
  bool bad_ = false;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_REACTORS_H_
