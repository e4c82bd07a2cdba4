// File: core/rpc/stub.h
//
// The typed, protobuf layer: what protoc-gen-vrpc's generated stubs and
// service base classes are made of, in the shape of gRPC C++'s sync API.
//
// Client (blocking; not on a reactor thread):
//   UnaryCall(channel, "/pkg.Svc/M", &ctx, request, &response)
//   ClientReader<Resp>        server streaming: Read()... Finish()
//   ClientWriter<Req>         client streaming: Write()... WritesDone(), Finish()
//   ClientReaderWriter<Req, Resp>  bidi
// Client (callback):
//   AsyncUnaryCall(channel, method, &ctx, request, &response, done)
// Server (handlers run on worker threads):
//   UnaryHandler / ClientStreamingHandler / ServerStreamingHandler /
//   BidiStreamingHandler adapt typed functions to Service::Handler, with
//   ServerReader<Req>, ServerWriter<Resp>, ServerReaderWriter<Resp, Req>.
//
// Messages are serialized once into the send buffer and parsed from views of
// the received buffers (proto_codec.h). A message that does not parse fails
// the call with INTERNAL, as in gRPC.
#ifndef VRPC_CORE_RPC_STUB_H_
#define VRPC_CORE_RPC_STUB_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/rpc/blocking_call.h"
#include "core/rpc/channel.h"
#include "core/rpc/client_call.h"
#include "core/rpc/context.h"
#include "core/rpc/proto_codec.h"
#include "core/rpc/server_call.h"
#include "core/rpc/service.h"

namespace vrpc {
namespace rpc {

// ---------------------------------------------------------------------------
// Client

template <typename Req, typename Resp>
absl::Status UnaryCall(const std::shared_ptr<Channel>& channel, const std::string& method,
                       ClientContext* context, const Req& request, Resp* response) {
  SliceChain out;
  if (absl::Status s = SerializeFor(request, &out, *channel); !s.ok()) return s;
  SliceChain in;
  if (absl::Status s = BlockingUnaryCall(channel, method, context, std::move(out), &in); !s.ok()) {
    return s;
  }
  if (!Parse(in, response).ok()) return absl::InternalError("could not parse the response");
  return absl::OkStatus();
}

namespace internal {

// The response of a call the server answers with one message (unary and
// client streaming): the first message is parsed into |response|.
template <typename Resp>
class SingleResponse {
 public:
  explicit SingleResponse(Resp* response = nullptr) : response_(response) {}
  void Take(const SliceChain& message) {
    if (++messages_ == 1) parsed_ = Parse(message, response_);
  }
  // The call's result: |status|, or INTERNAL for an OK call whose response
  // was missing, repeated or unparsable.
  absl::Status Result(const absl::Status& status) const {
    if (!status.ok()) return status;
    if (messages_ != 1) return absl::InternalError("the call did not get exactly one response");
    if (!parsed_.ok()) return absl::InternalError("could not parse the response");
    return absl::OkStatus();
  }

 private:
  Resp* response_;
  int messages_ = 0;
  absl::Status parsed_;
};

// Owns itself until the call finishes.
template <typename Resp>
class AsyncUnary final : public ClientCallObserver {
 public:
  AsyncUnary(Resp* response, std::function<void(absl::Status)> done)
      : response_(response), done_(std::move(done)) {}
  void OnMessage(SliceChain message) override { response_.Take(message); }
  void OnFinish(const absl::Status& status, const Metadata&) override {
    const absl::Status result = response_.Result(status);
    std::function<void(absl::Status)> done = std::move(done_);
    delete this;
    done(result);
  }

 private:
  SingleResponse<Resp> response_;
  std::function<void(absl::Status)> done_;
};

}  // namespace internal

// |done| runs on the channel's reactor thread (keep it short); |context|
// and |response| must stay valid until then.
template <typename Req, typename Resp>
void AsyncUnaryCall(const std::shared_ptr<Channel>& channel, const std::string& method,
                    ClientContext* context, const Req& request, Resp* response,
                    std::function<void(absl::Status)> done) {
  SliceChain out;
  if (absl::Status s = SerializeFor(request, &out, *channel); !s.ok()) {
    return done(s);
  }
  auto* observer = new internal::AsyncUnary<Resp>(response, std::move(done));
  ClientCall::Start(channel, method, context, observer, std::move(out), /*writes_done=*/true);
}

// Server streaming: the request is sent at construction.
template <typename Resp>
class ClientReader {
 public:
  template <typename Req>
  ClientReader(const std::shared_ptr<Channel>& channel, const std::string& method,
               ClientContext* context, const Req& request)
      : call_(channel, method, context) {
    SliceChain out;
    status_ = SerializeFor(request, &out, *channel);
    if (status_.ok()) call_.Write(std::move(out));
    call_.WritesDone();
  }
  bool Read(Resp* message) {
    SliceChain in;
    if (!status_.ok() || !call_.Read(&in)) return false;
    if (!Parse(in, message).ok()) {
      status_ = absl::InternalError("could not parse a response");
      return false;
    }
    return true;
  }
  absl::Status Finish() {
    absl::Status s = call_.Finish();
    return status_.ok() ? s : status_;
  }

 private:
  BlockingCall call_;
  absl::Status status_;
};

// Client streaming: Finish() fills the response.
template <typename Req>
class ClientWriter {
 public:
  template <typename Resp>
  ClientWriter(const std::shared_ptr<Channel>& channel, const std::string& method,
               ClientContext* context, Resp* response)
      : channel_(channel),
        call_(channel, method, context),
        parse_([response](const SliceChain& in) { return Parse(in, response); }) {}
  bool Write(const Req& message) {
    SliceChain out;
    if (!SerializeFor(message, &out, *channel_).ok()) return false;
    return call_.Write(std::move(out));
  }
  bool WritesDone() {
    call_.WritesDone();
    return true;
  }
  absl::Status Finish() {
    call_.WritesDone();
    SliceChain in;
    const bool got = call_.Read(&in);
    absl::Status s = call_.Finish();
    if (!s.ok()) return s;
    if (!got || !parse_(in).ok()) return absl::InternalError("missing or bad response");
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<Channel> channel_;
  BlockingCall call_;
  std::function<absl::Status(const SliceChain&)> parse_;
};

// Bidi streaming.
template <typename Req, typename Resp>
class ClientReaderWriter {
 public:
  ClientReaderWriter(const std::shared_ptr<Channel>& channel, const std::string& method,
                     ClientContext* context)
      : channel_(channel), call_(channel, method, context) {}
  bool Write(const Req& message) {
    SliceChain out;
    if (!SerializeFor(message, &out, *channel_).ok()) return false;
    return call_.Write(std::move(out));
  }
  bool WritesDone() {
    call_.WritesDone();
    return true;
  }
  bool Read(Resp* message) {
    SliceChain in;
    if (!call_.Read(&in)) return false;
    if (!Parse(in, message).ok()) {
      bad_ = true;
      return false;
    }
    return true;
  }
  absl::Status Finish() {
    absl::Status s = call_.Finish();
    if (s.ok() && bad_) return absl::InternalError("could not parse a response");
    return s;
  }

 private:
  std::shared_ptr<Channel> channel_;
  BlockingCall call_;
  bool bad_ = false;
};

// ---------------------------------------------------------------------------
// Server

template <typename Req>
class ServerReader {
 public:
  explicit ServerReader(ServerCall& call) : call_(call) {}
  bool Read(Req* message) {
    SliceChain in;
    if (!call_.Read(&in)) return false;
    if (!Parse(in, message).ok()) {
      bad_ = true;
      return false;
    }
    return true;
  }
  bool bad() const { return bad_; }
  // See ServerCall::CloseReads.
  void CloseReads() { call_.CloseReads(); }

 private:
  ServerCall& call_;
  bool bad_ = false;
};

template <typename Resp>
class ServerWriter {
 public:
  explicit ServerWriter(ServerCall& call) : call_(call) {}
  bool Write(const Resp& message) {
    SliceChain out;
    if (!Serialize(message, &out, call_.write_allocator()).ok()) return false;
    return call_.Write(std::move(out)).ok();
  }
  void SendInitialMetadata() { call_.SendInitialMetadata(); }

 private:
  ServerCall& call_;
};

template <typename Resp, typename Req>
class ServerReaderWriter : public ServerWriter<Resp>, public ServerReader<Req> {
 public:
  explicit ServerReaderWriter(ServerCall& call) : ServerWriter<Resp>(call), ServerReader<Req>(call) {}
};

namespace internal {
inline absl::Status BadRequest() { return absl::InternalError("could not parse the request"); }
inline absl::Status WriteResponse(ServerCall& call, const google::protobuf::MessageLite& m) {
  SliceChain out;
  if (absl::Status s = Serialize(m, &out, call.write_allocator()); !s.ok()) {
    return absl::InternalError(s.message());
  }
  return call.Write(std::move(out));
}
}  // namespace internal

template <typename Req, typename Resp>
Service::Handler UnaryHandler(std::function<absl::Status(ServerContext*, const Req&, Resp*)> fn) {
  return [fn = std::move(fn)](ServerCall& call) -> absl::Status {
    SliceChain in;
    if (!call.Read(&in)) return absl::InternalError("missing request");
    Req request;
    if (!Parse(in, &request).ok()) return internal::BadRequest();
    in.Clear();  // hand the receive buffers back before the handler runs long
    Resp response;
    absl::Status s = fn(&call.context(), request, &response);
    if (!s.ok()) return s;
    return internal::WriteResponse(call, response);
  };
}

template <typename Req, typename Resp>
Service::Handler ClientStreamingHandler(
    std::function<absl::Status(ServerContext*, ServerReader<Req>*, Resp*)> fn) {
  return [fn = std::move(fn)](ServerCall& call) -> absl::Status {
    ServerReader<Req> reader(call);
    Resp response;
    absl::Status s = fn(&call.context(), &reader, &response);
    if (reader.bad()) return internal::BadRequest();
    if (!s.ok()) return s;
    return internal::WriteResponse(call, response);
  };
}

template <typename Req, typename Resp>
Service::Handler ServerStreamingHandler(
    std::function<absl::Status(ServerContext*, const Req&, ServerWriter<Resp>*)> fn) {
  return [fn = std::move(fn)](ServerCall& call) -> absl::Status {
    SliceChain in;
    if (!call.Read(&in)) return absl::InternalError("missing request");
    Req request;
    if (!Parse(in, &request).ok()) return internal::BadRequest();
    in.Clear();
    ServerWriter<Resp> writer(call);
    return fn(&call.context(), request, &writer);
  };
}

template <typename Req, typename Resp>
Service::Handler BidiStreamingHandler(
    std::function<absl::Status(ServerContext*, ServerReaderWriter<Resp, Req>*)> fn) {
  return [fn = std::move(fn)](ServerCall& call) -> absl::Status {
    ServerReaderWriter<Resp, Req> stream(call);
    absl::Status s = fn(&call.context(), &stream);
    if (stream.bad()) return internal::BadRequest();
    return s;
  };
}

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_STUB_H_
