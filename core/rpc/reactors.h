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
// Client (callbacks on the channel's reactor thread):
//   ClientWriteReactor<Req, Resp>  client streaming: StartWrite / OnWriteDone,
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
#include "core/rpc/client_call.h"
#include "core/rpc/context.h"
#include "core/rpc/proto_codec.h"
#include "core/rpc/server_call.h"
#include "core/rpc/service.h"

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
      return call.Finish(absl::InternalError("could not parse a request"));
    }
    if (absl::Status s = reactor_->OnRead(request_); !s.ok()) call.Finish(s);
  }
  void OnReadsDone(ServerCall& call) override {
    Resp response;
    absl::Status status = reactor_->OnReadsDone(&response);
    if (status.ok()) {
      SliceChain out;
      status = Serialize(response, &out, call.write_allocator());
      if (status.ok()) status = call.Write(std::move(out));  // sent or queued
      if (!status.ok()) status = absl::InternalError(status.message());
    }
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
      return call.Finish(absl::InternalError("could not parse a request"));
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
// Client

// Client streaming by callbacks: StartCall, then StartWrite / OnWriteDone
// per request, StartWritesDone, and OnDone with the status (and the
// response parsed when it is OK). The reactor, |context| and |response|
// must stay valid until OnDone, which is the last callback (the reactor may
// delete itself there).
template <typename Req, typename Resp>
class ClientWriteReactor {
 public:
  ClientWriteReactor() : observer_(this) {}
  virtual ~ClientWriteReactor() = default;
  ClientWriteReactor(const ClientWriteReactor&) = delete;
  ClientWriteReactor& operator=(const ClientWriteReactor&) = delete;

  // Starts the call (once). Any thread.
  void StartCall(const std::shared_ptr<Channel>& channel, std::string method,
                 ClientContext* context, Resp* response) {
    channel_ = channel;
    response_ = response;
    call_ = ClientCall::Start(channel, std::move(method), context, &observer_);
  }
  // Sends |request|; OnWriteDone follows on the channel's reactor thread,
  // never from inside StartWrite, except when this write itself ends the
  // call (a message over the server's limit): then its report and OnDone
  // come before StartWrite returns. One write at a time: wait for
  // OnWriteDone before the next. Any thread, after StartCall.
  void StartWrite(const Req& request) {
    SliceChain out;
    if (absl::Status s = Serialize(request, &out, channel_->write_allocator()); !s.ok()) {
      return call_->Cancel();  // OnDone(CANCELLED) follows
    }
    if (!channel_->reactor().InLoop()) return call_->Write(std::move(out));  // posted
    // On the loop the call may take it at once and say so right away: that
    // report waits until this returns (or until the OnWriteDone it is
    // called from returns).
    const std::weak_ptr<int> alive = alive_;
    in_start_write_ = true;
    call_->Write(std::move(out));
    if (alive.expired()) return;  // the write ended the call, and OnDone deleted the reactor
    in_start_write_ = false;
    if (write_done_waiting_ && !in_write_done_) {
      channel_->reactor().Post([this, alive = std::weak_ptr<int>(alive_)] {
        if (!alive.expired()) DeliverWriteDone();  // else OnDone deleted the reactor
      });
    }
  }
  // Half-closes once the writes started before it went. Any thread.
  void StartWritesDone() { call_->WritesDone(); }
  // Cancels the call: OnDone(CANCELLED) follows. Any thread.
  void TryCancel() { call_->Cancel(); }

  virtual void OnWriteDone(bool ok) {}
  virtual void OnDone(const absl::Status& status) = 0;

 private:
  class Observer final : public ClientCallObserver {
   public:
    explicit Observer(ClientWriteReactor* reactor) : reactor_(reactor) {}
    void OnMessage(SliceChain message) override {
      if (++reactor_->messages_ == 1) reactor_->parsed_ = Parse(message, reactor_->response_);
    }
    void OnWriteDone(const absl::Status& status) override {
      reactor_->write_ok_ = status.ok();
      reactor_->write_done_waiting_ = true;
      if (!reactor_->in_start_write_ && !reactor_->in_write_done_) reactor_->DeliverWriteDone();
    }
    void OnFinish(const absl::Status& status, const Metadata&) override {
      reactor_->Done(status);
    }

   private:
    ClientWriteReactor* const reactor_;
  };

  // Reports waiting write completions, one after the other: an OnWriteDone
  // that starts the next write does not nest the next report.
  void DeliverWriteDone() {
    const std::weak_ptr<int> alive = alive_;
    in_write_done_ = true;
    while (write_done_waiting_) {
      write_done_waiting_ = false;
      OnWriteDone(write_ok_);
      if (alive.expired()) return;  // it cancelled the call and OnDone deleted the reactor
    }
    in_write_done_ = false;
  }
  void Done(const absl::Status& status) {
    if (write_done_waiting_ && !in_write_done_) DeliverWriteDone();  // OnDone comes last
    absl::Status result = status;
    if (result.ok() && messages_ != 1) result = absl::InternalError("no single response");
    if (result.ok() && !parsed_.ok()) result = absl::InternalError("could not parse the response");
    // OnDone may delete this reactor; the call (whose Finish is on the
    // stack) outlives it here.
    const std::shared_ptr<ClientCall> call = call_;
    OnDone(result);
  }

  Observer observer_;
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<ClientCall> call_;
  Resp* response_ = nullptr;
  int messages_ = 0;
  absl::Status parsed_;
  // Loop thread: write reports held back while StartWrite or OnWriteDone
  // is on the stack.
  bool in_start_write_ = false;
  bool in_write_done_ = false;
  bool write_done_waiting_ = false;
  bool write_ok_ = false;
  // Expires with the reactor: a posted report checks it.
  const std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_REACTORS_H_
