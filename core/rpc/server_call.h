// File: core/rpc/server_call.h
//
// ServerCall: one call as its handler sees it, with a blocking API meant for
// a worker thread: Read() waits for the next request message, Write() waits
// until flow control takes the response, and the handler's returned status
// becomes the trailers. The typed readers and writers of stub.h wrap it.
//
// An inline handler (Service::RunInline, unary only) runs on the reactor
// thread once the request is complete. There nothing waits: Read() returns
// what arrived, and a Write() the client's window cannot take yet is queued
// (one at most), with the trailers held back until it has gone out.
//
// A reactor call (Service::ServeOnReactor, any kind) has no handler
// thread at all: a ServerCallReactor is told of each event on the reactor
// thread, and answers with StartWrite and Finish from there.
//
// Thread-safety: Read, Write and SendInitialMetadata from the handler's
// thread; cancellation may arrive from the reactor at any moment, after
// which Read returns false and Write fails.
#ifndef VRPC_CORE_RPC_SERVER_CALL_H_
#define VRPC_CORE_RPC_SERVER_CALL_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "core/buffer/message_queue.h"
#include "core/buffer/slice.h"
#include "core/rpc/context.h"
#include "core/transport/connection.h"

namespace vrpc {
namespace rpc {

class ServerConnection;
class ServerCall;

// The callbacks of a call served on the reactor thread
// (Service::ServeOnReactor). Each runs on the server's reactor thread and
// must not block; it answers through |call| (StartWrite, Finish,
// SendInitialMetadata). The call owns its reactor and destroys it some time
// after the call ended.
class ServerCallReactor {
 public:
  virtual ~ServerCallReactor() = default;
  // A request message: a view of the receive buffers, valid during the
  // callback only. When it returns, the message's bytes count as consumed
  // and reopen the client's window.
  virtual void OnMessage(ServerCall& call, SliceChain message) = 0;
  // The client half-closed: no message follows. The reactor still has to
  // Finish the call (now or later).
  virtual void OnReadsDone(ServerCall& call) = 0;
  // The write begun by StartWrite went out (ok), or could not.
  virtual void OnWriteDone(ServerCall& call, const absl::Status& status) {}
  // The call was cancelled before it finished: client CANCEL, deadline,
  // connection lost or server shutdown. No callback follows.
  virtual void OnCancel(ServerCall& call) {}
};

class ServerCall : public std::enable_shared_from_this<ServerCall> {
 public:
  ServerCall(std::shared_ptr<ServerConnection> connection, uint32_t stream,
             std::unique_ptr<ServerContext> context);
  ServerCall(const ServerCall&) = delete;
  ServerCall& operator=(const ServerCall&) = delete;

  ServerContext& context() { return *context_; }

  // The next request message; false once the client half-closed (all
  // messages read) or the call was cancelled.
  bool Read(SliceChain* message);
  // Stops reading: a Read blocked on another thread returns false, and
  // messages that arrive later are dropped. For a handler that finishes
  // while its reader thread still waits (a program that exited before the
  // client half-closed). Thread-safe.
  void CloseReads();
  // Sends one response message, waiting while the client's window is
  // closed. Fails once the call was cancelled or ended.
  absl::Status Write(SliceChain message);
  // Reactor calls only, on the reactor thread: sends |message| now, or
  // queues it until the client's window opens. OnWriteDone follows either
  // way, never from inside StartWrite. One write at a time: a second
  // before the first's OnWriteDone fails that OnWriteDone with
  // FAILED_PRECONDITION.
  void StartWrite(SliceChain message);
  // Sends the context's initial metadata now (otherwise it goes with the
  // first Write or the trailers).
  void SendInitialMetadata();
  // Where response messages are best serialized: the transport's memory
  // (zero copy on the userspace driver), or heap when null. Any thread.
  const transport::WriteBufferAllocator& write_allocator() const { return write_allocator_; }

  // ---- For the server machinery (reactor thread) ----
  // Makes this an inline call: |run| is called once on the reactor, with
  // true when the request is complete (the client half-closed; run the
  // handler now), or with false if the call is cancelled before that.
  void RunInlineWhenComplete(std::function<void(ServerCall&, bool run)> run);
  // Makes this a reactor call: events go to |reactor| from now on, and
  // |ended| is called once when the call ends (true: cancelled).
  void ServeWith(std::unique_ptr<ServerCallReactor> reactor,
                 absl::AnyInvocable<void(bool cancelled)> ended);
  void Deliver(SliceChain message);
  void HalfClosed();
  void Cancelled(const absl::Status& why);
  void WindowOpened();
  // Sends the trailers (once; no-op after cancellation), after a write
  // still waiting for the window. Reactor thread; reactors call it too.
  void Finish(const absl::Status& status);
  uint32_t stream() const { return stream_; }

 private:
  void SendInitialMetadataOnLoop();
  void TryWriteOnLoop();
  // Reactor calls: returns window for |bytes| consumed; reports the end.
  void ConsumeOnLoop(size_t bytes);
  void Ended(bool cancelled);

  const std::weak_ptr<ServerConnection> connection_;
  const uint32_t stream_;
  const std::unique_ptr<ServerContext> context_;
  const transport::WriteBufferAllocator write_allocator_;

  std::mutex mu_;
  std::condition_variable cv_;
  MessageQueue inbox_;
  bool inbox_closed_ = false;
  bool ended_ = false;        // finished or cancelled
  // One write at a time: set by Write, taken on the reactor.
  bool write_pending_ = false;
  SliceChain write_;
  absl::Status write_result_;
  bool initial_metadata_sent_ = false;  // reactor thread
  // Inline calls (reactor thread): the runner until it is called, whether
  // the handler is running now, and trailers waiting for a queued write.
  std::function<void(ServerCall&, bool)> inline_run_;
  bool running_inline_ = false;
  std::optional<absl::Status> finish_after_write_;
  // Reactor calls (reactor thread): the reactor, whether StartWrite is on
  // the stack (its own write reports through a post), and the end hook.
  std::unique_ptr<ServerCallReactor> reactor_;
  bool starting_write_ = false;
  absl::AnyInvocable<void(bool)> ended_hook_;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_SERVER_CALL_H_
