// File: core/rpc/client_stream.h
//
// ClientStream: what the typed client reactors (reactors.h) share, over
// bytes: one ClientCall, the write reports, the reads' flow control and the
// end. Its hooks run on the channel's reactor thread:
//
//   HandleMessage(bytes)  each response message; its bytes return to the
//                         server's window when the hook returns
//   HandleWriteDone(ok)   a Write was taken (or not); never from inside
//                         Write, and never nested in another report, so a
//                         reactor that writes its next message from here
//                         does not grow the stack
//   HandleDone(status)    last; the object may be deleted there
//
// Write, WritesDone, Cancel: any thread, after Begin.
#ifndef VRPC_CORE_RPC_CLIENT_STREAM_H_
#define VRPC_CORE_RPC_CLIENT_STREAM_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "core/buffer/slice.h"
#include "google/protobuf/message_lite.h"
#include "core/rpc/channel.h"
#include "core/rpc/client_call.h"
#include "core/rpc/context.h"

namespace vrpc {
namespace rpc {
namespace internal {

class ClientStream {
 public:
  ClientStream() : observer_(this) {}
  virtual ~ClientStream() = default;
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

 protected:
  // Starts the call (once). |first_message| and |writes_done| go with its
  // HEADERS, as ClientCall::Start.
  void Begin(const std::shared_ptr<Channel>& channel, std::string method, ClientContext* context,
             std::optional<SliceChain> first_message = {}, bool writes_done = false);
  // HandleWriteDone follows each, in order; writes may be started before
  // earlier ones reported. When a write ends the call itself (a message
  // over the server's limit), its report and HandleDone come before Write
  // returns.
  void Write(SliceChain message);
  // Serializes |message| into the channel's write buffers and Writes it; a
  // message that does not serialize cancels the call.
  void WriteMessage(const google::protobuf::MessageLite& message);
  void WritesDone() { call_->WritesDone(); }
  void Cancel() { call_->Cancel(); }

  virtual void HandleMessage(const SliceChain& message) = 0;
  virtual void HandleWriteDone(bool ok) {}
  virtual void HandleDone(const absl::Status& status) = 0;

 private:
  class Observer final : public ClientCallObserver {
   public:
    explicit Observer(ClientStream* stream) : stream_(stream) {}
    void OnMessage(SliceChain message) override;
    void OnWriteDone(const absl::Status& status) override;
    void OnFinish(const absl::Status& status, const Metadata&) override;

   private:
    ClientStream* const stream_;
  };

  // Reports waiting write completions one after the other.
  void DeliverWriteDone();

  Observer observer_;
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<ClientCall> call_;
  // Loop thread: write reports held back while Write or a report is on the
  // stack.
  bool in_write_ = false;
  bool in_write_done_ = false;
  std::deque<bool> write_reports_;  // waiting reports: ok or not
  // Expires with this object: posted work and re-entrant paths check it.
  const std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace internal
}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_CLIENT_STREAM_H_
