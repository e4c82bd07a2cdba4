#include "core/rpc/server_connection.h"

#include <utility>
#include <vector>

#include "core/rpc/server.h"

namespace vrpc {
namespace rpc {

ServerConnection::ServerConnection(Server& server, io::Reactor& reactor)
    : server_(server), reactor_(reactor) {}

void ServerConnection::Start(std::unique_ptr<transport::Connection> transport) {
  peer_ = transport->peer_address();
  write_allocator_ = transport->write_buffer_allocator();
  std::weak_ptr<ServerConnection> weak = shared_from_this();
  RpcConnection::Callbacks callbacks;
  callbacks.on_event = [weak](SessionEvent& e) {
    if (auto self = weak.lock()) self->OnEvent(e);
  };
  callbacks.on_closed = [weak](const absl::Status& why) {
    if (auto self = weak.lock()) self->OnClosed(why);
  };
  conn_ = std::make_unique<RpcConnection>(std::move(transport), Session::Role::kServer,
                                          server_.options_.session, std::move(callbacks));
}

void ServerConnection::Post(std::function<void(ServerConnection&)> fn) {
  std::weak_ptr<ServerConnection> weak = shared_from_this();
  reactor_.Post([weak, fn = std::move(fn)] {
    if (auto self = weak.lock()) fn(*self);
  });
}

void ServerConnection::OnEvent(SessionEvent& e) {
  if (e.type == SessionEventType::kCallStarted) {
    server_.CallStarted(shared_from_this(), e);
    return;
  }
  auto it = calls_.find(e.stream);
  if (it == calls_.end()) return;
  std::shared_ptr<ServerCall> call = it->second.call;
  switch (e.type) {
    case SessionEventType::kMessage:
      call->Deliver(std::move(e.message));
      break;
    case SessionEventType::kHalfClosed:
      call->HalfClosed();
      break;
    case SessionEventType::kWritable:
      call->WindowOpened();
      break;
    case SessionEventType::kCancelled:
      call->Cancelled(absl::Status(e.status.code, e.status.message));
      CallFinished(e.stream);
      break;
    default:
      break;
  }
}

void ServerConnection::Register(uint32_t stream, std::shared_ptr<ServerCall> call,
                                absl::Duration timeout) {
  Running& r = calls_[stream];
  r.call = std::move(call);
  if (timeout == absl::InfiniteDuration()) return;
  std::weak_ptr<ServerConnection> weak = shared_from_this();
  r.deadline_timer = reactor_.RunAfter(timeout, [weak, stream] {
    auto self = weak.lock();
    if (self == nullptr) return;
    auto it = self->calls_.find(stream);
    if (it == self->calls_.end()) return;
    it->second.deadline_timer = 0;
    const absl::Status why = absl::DeadlineExceededError("deadline exceeded");
    it->second.call->Cancelled(why);
    if (self->conn_ != nullptr && !self->closed_) {
      self->conn_->session().Cancel(stream, CallStatus{why.code(), std::string(why.message()), {}},
                                    self->conn_->out());
      self->conn_->Flush();
    }
    self->CallFinished(stream);
  });
}

void ServerConnection::CallFinished(uint32_t stream) {
  auto it = calls_.find(stream);
  if (it == calls_.end()) return;
  if (it->second.deadline_timer != 0) reactor_.CancelTimer(it->second.deadline_timer);
  calls_.erase(it);
}

void ServerConnection::GoAway() {
  if (conn_ == nullptr || closed_) return;
  conn_->session().SendGoAway(absl::StatusCode::kUnavailable, "server shutting down", conn_->out());
  conn_->Flush();
}

void ServerConnection::CancelAll(const absl::Status& why) {
  std::vector<uint32_t> streams;
  for (const auto& [id, running] : calls_) streams.push_back(id);
  for (uint32_t id : streams) {
    auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    std::shared_ptr<ServerCall> call = it->second.call;
    call->Cancelled(why);
    if (conn_ != nullptr && !closed_) {
      conn_->session().Cancel(id, CallStatus{why.code(), std::string(why.message()), {}},
                              conn_->out());
    }
    CallFinished(id);
  }
  if (conn_ != nullptr && !closed_) conn_->Flush();
}

void ServerConnection::Close(const absl::Status& why) {
  if (conn_ != nullptr && !closed_) conn_->Close(why);
}

void ServerConnection::CloseWhenFlushed() {
  if (conn_ != nullptr && !closed_) conn_->CloseWhenFlushed();
}

void ServerConnection::OnClosed(const absl::Status& why) {
  closed_ = true;
  CancelAll(why);
  server_.ConnectionClosed(this);
}

}  // namespace rpc
}  // namespace vrpc
