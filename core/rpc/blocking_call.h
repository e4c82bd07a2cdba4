// File: core/rpc/blocking_call.h
//
// BlockingCall: a ClientCall driven from an application thread with
// blocking Write / Read / Finish, as gRPC's sync API. The typed stubs
// (stub.h) are thin wrappers over it.
//
//   BlockingCall call(channel, "/pkg.Svc/Method", &ctx);
//   call.Write(request);          // waits while the server's window is closed
//   call.WritesDone();
//   while (call.Read(&reply)) ... // views of the transport's buffers
//   absl::Status s = call.Finish();
//
// Not for the reactor thread. One thread at a time per method; a reader and
// a writer thread may run concurrently (bidi).
#ifndef VRPC_CORE_RPC_BLOCKING_CALL_H_
#define VRPC_CORE_RPC_BLOCKING_CALL_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "core/buffer/message_queue.h"
#include "core/buffer/slice.h"
#include "core/rpc/channel.h"
#include "core/rpc/client_call.h"
#include "core/rpc/context.h"

namespace vrpc {
namespace rpc {

class BlockingCall final : private ClientCallObserver {
 public:
  BlockingCall(const std::shared_ptr<Channel>& channel, std::string method,
               ClientContext* context);
  // Cancels the call if it has not finished, and waits for it to end.
  ~BlockingCall() override;
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;

  // True when the call took the message; false if it had ended first
  // (Finish() tells why). A call that ends right after taking the message
  // (the server answered and gave up meanwhile) still took it.
  bool Write(SliceChain message);
  void WritesDone();
  // The next response; false at the end of the responses (or the call).
  bool Read(SliceChain* message);
  // Waits for the status (reading and dropping unread responses).
  absl::Status Finish();

 private:
  void OnMessage(SliceChain message) override;
  void OnWriteDone(const absl::Status& status) override;
  void OnFinish(const absl::Status& status, const Metadata& trailers) override;

  std::shared_ptr<ClientCall> call_;
  std::mutex mu_;
  std::condition_variable cv_;
  MessageQueue inbox_;
  int writes_in_flight_ = 0;
  uint64_t writes_reported_ = 0;  // OnWriteDone reports
  absl::Status last_write_;
  bool finished_ = false;
  absl::Status status_;
};

// A unary call: sends |request| (with HEADERS and HALF_CLOSE in the same
// transport write), waits for the single response and the status. A missing
// or extra response is INTERNAL, as in gRPC.
absl::Status BlockingUnaryCall(const std::shared_ptr<Channel>& channel, std::string method,
                               ClientContext* context, SliceChain request,
                               SliceChain* response);

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_BLOCKING_CALL_H_
