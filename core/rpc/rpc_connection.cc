#include "core/rpc/rpc_connection.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace rpc {

RpcConnection::RpcConnection(std::unique_ptr<transport::Connection> transport,
                             Session::Role role, const SessionOptions& options,
                             Callbacks callbacks)
    : transport_(std::move(transport)),
      session_(role, options, out_),
      callbacks_(std::move(callbacks)),
      max_unsent_bytes_(options.max_unsent_bytes) {
  transport_->SetEventHandler([this](const transport::ConnectionEvent& e) { OnTransportEvent(e); });
  // Bytes may have arrived before the handler was set.
  transport_->reactor().Post([alive = alive_] {
    if (RpcConnection* self = *alive) {
      self->ReadAll();
      self->Flush();
    }
  });
  Flush();
}

RpcConnection::~RpcConnection() {
  *alive_ = nullptr;
  closed_ = true;
  transport_->SetEventHandler(nullptr);
  transport_->Close();
}

void RpcConnection::OnTransportEvent(const transport::ConnectionEvent& e) {
  if (closed_) return;
  std::shared_ptr<RpcConnection*> alive = alive_;
  switch (e.type) {
    case transport::ConnectionEventType::kReadable:
    case transport::ConnectionEventType::kPeerShutdown:
      ReadAll();
      break;
    case transport::ConnectionEventType::kCreditBlocked:
      if (!credit_blocked_) {
        credit_blocked_ = true;
        if (callbacks_.on_credit) callbacks_.on_credit(true);
      }
      break;
    case transport::ConnectionEventType::kWritable:
      WritePending();
      if (credit_blocked_) {
        credit_blocked_ = false;
        if (callbacks_.on_credit) callbacks_.on_credit(false);
      }
      break;
    case transport::ConnectionEventType::kClosed:
      ReadAll();  // bytes that arrived before the end still count
      if (!*alive || closed_) return;
      Close(e.status.ok() ? absl::UnavailableError("the peer closed the connection")
                          : absl::UnavailableError(e.status.message()));
      return;
    default:
      break;
  }
  if (*alive && !closed_) Flush();
}

void RpcConnection::ReadAll() {
  while (!closed_) {
    absl::StatusOr<SliceChain> bytes = transport_->Read(SIZE_MAX);
    if (!bytes.ok() || bytes->empty()) break;
    absl::Status s = session_.OnBytes(*std::move(bytes), out_);
    if (!s.ok()) {
      // GOAWAY is queued: send it, then close.
      Flush();
      WritePending();
      if (!closed_) Close(s);
      return;
    }
  }
  if (!closed_ && transport_->AtEof()) {
    Flush();
    if (!closed_) Close(absl::UnavailableError("the peer closed the connection"));
  }
}

void RpcConnection::WritePending() {
  while (!pending_.empty() && !closed_) {
    absl::StatusOr<size_t> n = transport_->Write(pending_);
    if (!n.ok()) {
      pending_.Clear();
      return;  // the transport's kClosed follows
    }
    if (*n == 0) break;  // credit-blocked: kWritable resumes
  }
  if (closed_) return;
  UpdateBacklog();
  if (pending_.empty() && close_when_flushed_) (void)transport_->ShutdownWrite();
}

void RpcConnection::UpdateBacklog() {
  const size_t unsent = pending_.size();
  if (!session_.output_backlogged() && unsent >= max_unsent_bytes_) {
    session_.SetOutputBacklogged(true, out_);
  } else if (session_.output_backlogged() && unsent <= max_unsent_bytes_ / 4) {
    session_.SetOutputBacklogged(false, out_);  // kWritable events: Flush delivers them
  }
}

void RpcConnection::ScheduleWrite() {
  if (write_posted_ || pending_.empty()) return;
  write_posted_ = true;
  // Capturing only |alive| keeps the closure within AnyInvocable's inline
  // storage: no allocation per write.
  transport_->reactor().Post([alive = alive_] {
    if (RpcConnection* self = *alive) {
      self->write_posted_ = false;
      self->WritePending();
      if (*alive && !self->out_.empty()) self->Flush();
    }
  });
}

void RpcConnection::Flush() {
  if (flushing_ || out_.empty()) return;  // nested, or nothing to do
  flushing_ = true;
  std::shared_ptr<RpcConnection*> alive = alive_;
  while (*alive && !out_.empty()) {
    pending_.Append(std::move(out_.bytes));
    out_.bytes.Clear();
    UpdateBacklog();
    // Swap rather than move, so both vectors keep their capacity.
    std::vector<SessionEvent> events;
    events.swap(spare_events_);
    events.swap(out_.events);
    ScheduleWrite();
    for (SessionEvent& e : events) {
      if (!*alive) return;
      if (callbacks_.on_event) callbacks_.on_event(e);
    }
    if (!*alive) return;
    events.clear();
    if (spare_events_.capacity() < events.capacity()) spare_events_.swap(events);
  }
  if (*alive) flushing_ = false;
}

void RpcConnection::Close(const absl::Status& why) {
  if (closed_) return;
  // What is already queued (trailers, GOAWAY) still goes out if the
  // transport has credit for it.
  pending_.Append(std::move(out_.bytes));
  out_.bytes.Clear();
  WritePending();
  if (closed_) return;
  // End every call through the session's own bookkeeping (events).
  std::shared_ptr<RpcConnection*> alive = alive_;
  session_.Abort(why, out_);
  closed_ = true;
  std::vector<SessionEvent> events = std::move(out_.events);
  out_.Clear();
  transport_->SetEventHandler(nullptr);
  transport_->Close();
  for (SessionEvent& e : events) {
    if (!*alive) return;
    if (callbacks_.on_event) callbacks_.on_event(e);
  }
  if (*alive && callbacks_.on_closed) callbacks_.on_closed(why);
}

void RpcConnection::CloseWhenFlushed() {
  close_when_flushed_ = true;
  ScheduleWrite();
  if (pending_.empty()) WritePending();
}

}  // namespace rpc
}  // namespace vrpc
