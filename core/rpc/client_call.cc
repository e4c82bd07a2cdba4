#include "core/rpc/client_call.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace rpc {

std::shared_ptr<ClientCall> ClientCall::Start(const std::shared_ptr<Channel>& channel,
                                              std::string method, ClientContext* context,
                                              ClientCallObserver* observer,
                                              std::optional<SliceChain> first_message,
                                              bool writes_done) {
  std::shared_ptr<ClientCall> call = Create(channel, std::move(method), context, observer,
                                            std::move(first_message), writes_done);
  call->Begin();
  return call;
}

void ClientCall::Begin() {
  channel_->RunOnLoop([call = shared_from_this()] { call->BeginOnLoop(); });
}

std::shared_ptr<ClientCall> ClientCall::Create(const std::shared_ptr<Channel>& channel,
                                               std::string method, ClientContext* context,
                                               ClientCallObserver* observer,
                                               std::optional<SliceChain> first_message,
                                               bool writes_done) {
  // One allocation for the call and its count (the constructor is private).
  struct Shareable : ClientCall {
    Shareable(const std::shared_ptr<Channel>& ch, std::string m, ClientContext* ctx,
              ClientCallObserver* obs)
        : ClientCall(ch, std::move(m), ctx, obs) {}
  };
  std::shared_ptr<ClientCall> call =
      std::make_shared<Shareable>(channel, std::move(method), context, observer);
  // Not yet visible to the loop: no synchronization needed.
  if (first_message.has_value()) call->writes_.push_back(*std::move(first_message));
  call->writes_done_ = writes_done;
  std::weak_ptr<ClientCall> weak = call;
  context->set_canceller([weak] {
    if (std::shared_ptr<ClientCall> c = weak.lock()) {
      c->CancelWith(absl::CancelledError("cancelled by the client"));
    }
  });
  return call;
}

ClientCall::ClientCall(std::shared_ptr<Channel> channel, std::string method,
                       ClientContext* context, ClientCallObserver* observer)
    : channel_(std::move(channel)),
      method_(std::move(method)),
      context_(context),
      observer_(observer) {}

void ClientCall::BeginOnLoop() {
  if (phase_ == Phase::kDone) return;
  const absl::Time deadline = context_->deadline();
  if (deadline != absl::InfiniteFuture()) {
    if (deadline <= absl::Now()) {
      return Finish(absl::DeadlineExceededError("deadline passed before the call started"), {});
    }
    std::weak_ptr<ClientCall> weak = shared_from_this();
    // The reactor's clock may differ from the wall clock: use the delay.
    deadline_timer_ = channel_->reactor_.RunAfter(deadline - absl::Now(), [weak] {
      if (std::shared_ptr<ClientCall> c = weak.lock()) {
        c->deadline_timer_ = 0;
        c->CancelWith(absl::DeadlineExceededError("deadline exceeded"));
      }
    });
  }
  channel_->Enqueue(shared_from_this());
}

void ClientCall::Activate(uint32_t stream) {
  phase_ = Phase::kActive;
  stream_ = stream;
  TrySend();
}

void ClientCall::Write(SliceChain message) {
  std::shared_ptr<ClientCall> self = shared_from_this();
  channel_->RunOnLoop([self, message = std::move(message)]() mutable {
    // After OnFinish nothing may reach the observer, which its owner may
    // have destroyed already (a BlockingCall whose Write returned when the
    // call finished while this closure was still posted).
    if (self->phase_ == Phase::kDone) return;
    if (self->writes_done_) {
      self->observer_->OnWriteDone(absl::FailedPreconditionError("the call cannot write"));
      return;
    }
    self->writes_.push_back(std::move(message));
    self->TrySend();
  });
}

void ClientCall::WritesDone() {
  std::shared_ptr<ClientCall> self = shared_from_this();
  channel_->RunOnLoop([self] {
    if (self->writes_done_) return;
    self->writes_done_ = true;
    self->TrySend();
  });
}

void ClientCall::Consume(size_t bytes) {
  std::shared_ptr<ClientCall> self = shared_from_this();
  channel_->RunOnLoop([self, bytes] {
    Channel& ch = *self->channel_;
    if (self->phase_ != Phase::kActive || ch.conn_ == nullptr) return;
    ch.conn_->session().ConsumeMessage(self->stream_, bytes, ch.conn_->out());
    ch.conn_->Flush();
  });
}

void ClientCall::TrySend() {
  Channel& ch = *channel_;
  if (phase_ != Phase::kActive || ch.conn_ == nullptr) return;
  Session& session = ch.conn_->session();
  while (!writes_.empty() && phase_ == Phase::kActive) {
    if (!session.CanSend(stream_)) {
      session.WantSend(stream_);  // kWritable resumes
      break;
    }
    SliceChain message = writes_.pop_front();
    const absl::Status s = session.SendMessage(stream_, std::move(message), ch.conn_->out());
    // Each observer callback gets its own Status object (no rep shared with
    // this thread's locals: the observer hands them to other threads).
    observer_->OnWriteDone(absl::Status(s.code(), s.message()));
    if (absl::IsResourceExhausted(s)) {
      // Over the server's message limit: the call fails, as in gRPC.
      ch.conn_->session().Cancel(stream_, CallStatus{absl::StatusCode::kCancelled, "", {}},
                                 ch.conn_->out());
      ch.conn_->Flush();
      return Finish(absl::Status(s.code(), s.message()), {});
    }
  }
  if (phase_ == Phase::kActive && writes_.empty() && writes_done_ && !half_closed_) {
    half_closed_ = true;
    (void)session.HalfClose(stream_, ch.conn_->out());
  }
  if (ch.conn_ != nullptr) ch.conn_->Flush();
}

void ClientCall::OnEvent(SessionEvent& e) {
  switch (e.type) {
    case SessionEventType::kInitialMetadata:
      context_->set_server_initial_metadata(e.metadata);
      observer_->OnInitialMetadata(e.metadata);
      break;
    case SessionEventType::kMessage:
      observer_->OnMessage(std::move(e.message));
      break;
    case SessionEventType::kWritable:
      TrySend();
      break;
    case SessionEventType::kFinished: {
      absl::Status status = e.status.code == absl::StatusCode::kOk
                                ? absl::OkStatus()
                                : absl::Status(e.status.code, e.status.message);
      Finish(status, e.status.metadata);
      break;
    }
    default:
      break;
  }
}

void ClientCall::CancelWith(const absl::Status& why) {
  std::shared_ptr<ClientCall> self = shared_from_this();
  channel_->RunOnLoop([self, why] {
    if (self->phase_ == Phase::kDone) return;
    Channel& ch = *self->channel_;
    if (self->phase_ == Phase::kActive && ch.conn_ != nullptr) {
      ch.conn_->session().Cancel(self->stream_, CallStatus{why.code(), std::string(why.message()), {}},
                                 ch.conn_->out());
      ch.conn_->Flush();
    }
    self->Finish(why, {});
  });
}

void ClientCall::Finish(const absl::Status& status, const Metadata& trailers) {
  if (phase_ == Phase::kDone) return;
  phase_ = Phase::kDone;
  if (deadline_timer_ != 0) channel_->reactor_.CancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  for (size_t i = 0; i < writes_.size(); ++i) {
    observer_->OnWriteDone(absl::Status(status.ok() ? absl::StatusCode::kCancelled : status.code(),
                                        "the call ended"));
  }
  writes_.clear();
  context_->set_canceller(nullptr);
  context_->set_server_trailing_metadata(trailers);
  channel_->CallEnded(*this, status);
  observer_->OnFinish(status, trailers);
}

}  // namespace rpc
}  // namespace vrpc
