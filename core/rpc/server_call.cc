#include "core/rpc/server_call.h"

#include <utility>

#include "core/rpc/server_connection.h"

namespace vrpc {
namespace rpc {

ServerCall::ServerCall(std::shared_ptr<ServerConnection> connection, uint32_t stream,
                       std::unique_ptr<ServerContext> context)
    : connection_(connection),
      stream_(stream),
      context_(std::move(context)),
      write_allocator_(connection != nullptr ? connection->write_allocator()
                                             : transport::WriteBufferAllocator()) {}

bool ServerCall::Read(SliceChain* message) {
  size_t size = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !inbox_.empty() || inbox_closed_; });
    if (inbox_.empty()) return false;
    *message = inbox_.pop_front();
    size = message->size();
  }
  // Reading opens the client's window for this call.
  if (running_inline_) {
    ConsumeOnLoop(size);
  } else if (auto conn = connection_.lock()) {
    conn->Post([self = shared_from_this(), size](ServerConnection&) { self->ConsumeOnLoop(size); });
  }
  return true;
}

void ServerCall::ConsumeOnLoop(size_t bytes) {
  std::shared_ptr<ServerConnection> conn = connection_.lock();
  if (conn == nullptr || conn->rpc() == nullptr) return;
  conn->rpc()->session().ConsumeMessage(stream_, bytes, conn->rpc()->out());
  conn->rpc()->Flush();
}

void ServerCall::StartWrite(SliceChain message) {
  starting_write_ = true;
  absl::Status status = Write(std::move(message));
  starting_write_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (status.ok() && write_pending_) return;  // TryWriteOnLoop reports it
  }
  std::shared_ptr<ServerConnection> conn = connection_.lock();
  if (conn == nullptr) return;
  conn->reactor().Post([self = shared_from_this(), status = std::move(status)] {
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->ended_) return;  // finished or cancelled meanwhile: nothing follows
    }
    self->reactor_->OnWriteDone(*self, status);
  });
}

absl::Status ServerCall::Write(SliceChain message) {
  std::unique_lock<std::mutex> lock(mu_);
  if (ended_) return absl::CancelledError("the call has ended");
  if (running_inline_) {
    // On the reactor: send now, or queue until the window opens.
    if (write_pending_) {
      return absl::FailedPreconditionError(
          "an inline handler's earlier response still waits for the client's window");
    }
    write_pending_ = true;
    write_ = std::move(message);
    write_result_ = absl::OkStatus();
    lock.unlock();
    TryWriteOnLoop();
    lock.lock();
    return write_pending_ ? absl::OkStatus() : write_result_;
  }
  write_pending_ = true;
  write_ = std::move(message);
  write_result_ = absl::OkStatus();
  std::shared_ptr<ServerConnection> conn = connection_.lock();
  if (conn == nullptr) return absl::UnavailableError("the connection is gone");
  lock.unlock();
  conn->Post([self = shared_from_this()](ServerConnection&) { self->TryWriteOnLoop(); });
  lock.lock();
  cv_.wait(lock, [this] { return !write_pending_; });
  return write_result_;
}

void ServerCall::SendInitialMetadata() {
  if (running_inline_) return SendInitialMetadataOnLoop();
  if (auto conn = connection_.lock()) {
    conn->Post([self = shared_from_this()](ServerConnection&) { self->SendInitialMetadataOnLoop(); });
  }
}

void ServerCall::SendInitialMetadataOnLoop() {
  if (initial_metadata_sent_) return;
  std::shared_ptr<ServerConnection> conn = connection_.lock();
  if (conn == nullptr || conn->rpc() == nullptr) return;
  initial_metadata_sent_ = true;
  if (context_->initial_metadata().empty()) return;  // nothing to say
  (void)conn->rpc()->session().SendInitialMetadata(stream_, context_->initial_metadata(),
                                                   conn->rpc()->out());
  conn->rpc()->Flush();
}

void ServerCall::TryWriteOnLoop() {
  std::shared_ptr<ServerConnection> conn = connection_.lock();
  std::unique_lock<std::mutex> lock(mu_);
  if (!write_pending_) return;
  if (ended_ || conn == nullptr || conn->rpc() == nullptr ||
      !conn->rpc()->session().IsOpen(stream_)) {
    write_result_ = absl::CancelledError("the call has ended");
  } else {
    lock.unlock();
    SendInitialMetadataOnLoop();  // may flush, and so run this call's other events
    lock.lock();
    if (!write_pending_) return;  // settled meanwhile: sent, or the call ended
    if (conn->rpc() == nullptr) {
      write_result_ = absl::CancelledError("the call has ended");
    } else {
      Session& session = conn->rpc()->session();
      if (!session.CanSend(stream_)) {
        session.WantSend(stream_);
        return;  // WindowOpened() retries
      }
      write_result_ = session.SendMessage(stream_, std::move(write_), conn->rpc()->out());
    }
  }
  write_ = SliceChain();
  write_pending_ = false;
  std::optional<absl::Status> finish = std::move(finish_after_write_);
  finish_after_write_.reset();
  const absl::Status result = write_result_;
  lock.unlock();
  cv_.notify_all();
  if (finish.has_value()) return Finish(*finish);  // flushes
  // A reactor's queued write went out (its own StartWrite reports the rest).
  if (reactor_ != nullptr && !starting_write_) reactor_->OnWriteDone(*this, result);
  if (conn != nullptr && conn->rpc() != nullptr) conn->rpc()->Flush();
}

void ServerCall::RunInlineWhenComplete(std::function<void(ServerCall&, bool)> run) {
  inline_run_ = std::move(run);
}

void ServerCall::ServeWith(std::unique_ptr<ServerCallReactor> reactor,
                           absl::AnyInvocable<void(bool cancelled)> ended) {
  reactor_ = std::move(reactor);
  ended_hook_ = std::move(ended);
  running_inline_ = true;  // Write, Read and metadata take the reactor-thread paths
}

void ServerCall::Ended(bool cancelled) {
  if (!ended_hook_) return;
  absl::AnyInvocable<void(bool)> hook = std::move(ended_hook_);
  ended_hook_ = nullptr;
  hook(cancelled);
}

void ServerCall::Deliver(SliceChain message) {
  if (reactor_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_ || inbox_closed_) return;
    }
    const size_t size = message.size();
    reactor_->OnMessage(*this, std::move(message));
    return ConsumeOnLoop(size);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (inbox_closed_) return;
    inbox_.push_back(std::move(message));
  }
  cv_.notify_all();
}

void ServerCall::CloseReads() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_closed_ = true;
    inbox_.clear();
  }
  cv_.notify_all();
}

void ServerCall::HalfClosed() {
  bool ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_closed_ = true;
    ended = ended_;
  }
  cv_.notify_all();
  if (reactor_ != nullptr) {
    if (!ended) reactor_->OnReadsDone(*this);
    return;
  }
  if (inline_run_) {
    std::function<void(ServerCall&, bool)> run = std::move(inline_run_);
    inline_run_ = nullptr;
    std::shared_ptr<ServerCall> self = shared_from_this();  // the runner may end the call
    running_inline_ = true;
    run(*this, true);
    running_inline_ = false;
  }
}

void ServerCall::Cancelled(const absl::Status& why) {
  context_->MarkCancelled();
  bool was_ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_ended = ended_;
    ended_ = true;
    inbox_closed_ = true;
    inbox_.clear();
    if (write_pending_) {
      write_pending_ = false;
      write_ = SliceChain();
      write_result_ = why;
    }
    finish_after_write_.reset();
  }
  cv_.notify_all();
  if (reactor_ != nullptr && !was_ended) {
    reactor_->OnCancel(*this);
    Ended(/*cancelled=*/true);
  }
  if (inline_run_) {  // cancelled before its request was complete
    std::function<void(ServerCall&, bool)> run = std::move(inline_run_);
    inline_run_ = nullptr;
    run(*this, false);
  }
}

void ServerCall::WindowOpened() { TryWriteOnLoop(); }

void ServerCall::Finish(const absl::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    if (write_pending_) {  // an inline handler's queued response goes first
      finish_after_write_ = status;
      return;
    }
    ended_ = true;
    inbox_.clear();
  }
  Ended(/*cancelled=*/false);
  std::shared_ptr<ServerConnection> conn = connection_.lock();
  if (conn == nullptr || conn->rpc() == nullptr) return;
  if (!conn->rpc()->session().IsOpen(stream_)) return;
  SendInitialMetadataOnLoop();
  (void)conn->rpc()->session().Finish(
      stream_,
      CallStatus{status.code(), std::string(status.message()), context_->trailing_metadata()},
      conn->rpc()->out());
  conn->rpc()->Flush();
  conn->CallFinished(stream_);
}

}  // namespace rpc
}  // namespace vrpc
