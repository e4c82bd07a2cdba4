#include "core/rpc/client_stream.h"

#include <utility>

#include "core/rpc/proto_codec.h"

namespace vrpc {
namespace rpc {
namespace internal {

void ClientStream::Begin(const std::shared_ptr<Channel>& channel, std::string method,
                         ClientContext* context, std::optional<SliceChain> first_message,
                         bool writes_done) {
  channel_ = channel;
  // Held before it starts: the first response may arrive on the loop
  // before a Start called from another thread would have returned.
  call_ = ClientCall::Create(channel, std::move(method), context, &observer_,
                             std::move(first_message), writes_done);
  call_->Begin();
}

void ClientStream::Write(SliceChain message) {
  if (!channel_->reactor().InLoop()) return call_->Write(std::move(message));  // posted
  // On the loop the call may take it at once and say so right away: that
  // report waits until this returns (or until the report it is called from
  // returns).
  const std::weak_ptr<int> alive = alive_;
  in_write_ = true;
  call_->Write(std::move(message));
  if (alive.expired()) return;  // the write ended the call, and the owner deleted this
  in_write_ = false;
  if (!write_reports_.empty() && !in_write_done_) {
    channel_->reactor().Post([this, alive] {
      if (!alive.expired()) DeliverWriteDone();
    });
  }
}

void ClientStream::WriteMessage(const google::protobuf::MessageLite& message) {
  SliceChain out;
  if (!SerializeFor(message, &out, *channel_).ok()) return Cancel();
  Write(std::move(out));
}

void ClientStream::DeliverWriteDone() {
  const std::weak_ptr<int> alive = alive_;
  in_write_done_ = true;
  while (!write_reports_.empty()) {
    const bool ok = write_reports_.front();
    write_reports_.pop_front();
    HandleWriteDone(ok);
    if (alive.expired()) return;  // it cancelled the call and the owner deleted this
  }
  in_write_done_ = false;
}

void ClientStream::Observer::OnMessage(SliceChain message) {
  // The call outlives a HandleMessage that ends it (and deletes the stream).
  const std::shared_ptr<ClientCall> call = stream_->call_;
  const size_t size = message.size();
  stream_->HandleMessage(message);
  message.Clear();
  if (call != nullptr) call->Consume(size);  // reopens the server's window
}

void ClientStream::Observer::OnWriteDone(const absl::Status& status) {
  stream_->write_reports_.push_back(status.ok());
  if (!stream_->in_write_ && !stream_->in_write_done_) stream_->DeliverWriteDone();
}

void ClientStream::Observer::OnFinish(const absl::Status& status, const Metadata&) {
  ClientStream* stream = stream_;
  // Write reports come before the end.
  if (!stream->write_reports_.empty() && !stream->in_write_done_) stream->DeliverWriteDone();
  // HandleDone may delete the stream; the call (whose Finish is on the
  // stack) outlives it here.
  const std::shared_ptr<ClientCall> call = stream->call_;
  stream->HandleDone(status);
}

}  // namespace internal
}  // namespace rpc
}  // namespace vrpc
