#include "core/rpc/channel.h"

#include <future>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/rpc/client_call.h"

namespace vrpc {
namespace rpc {
namespace {

// Wraps |fn(Channel&, args...)| for callbacks that may outlive |channel|
// (transport events, timers, posted tasks): it runs only while the channel
// is alive.
template <typename Fn>
auto Guarded(Channel& channel, Fn fn) {
  return [weak = channel.weak_from_this(), fn = std::move(fn)](auto&&... args) mutable {
    std::shared_ptr<Channel> self = weak.lock();
    if (self == nullptr) return;
    fn(*self, std::forward<decltype(args)>(args)...);
  };
}

}  // namespace

const char* ConnectivityStateName(ConnectivityState state) {
  switch (state) {
    case ConnectivityState::kIdle: return "IDLE";
    case ConnectivityState::kConnecting: return "CONNECTING";
    case ConnectivityState::kReady: return "READY";
    case ConnectivityState::kTransientFailure: return "TRANSIENT_FAILURE";
    case ConnectivityState::kShutdown: return "SHUTDOWN";
  }
  return "?";
}

std::shared_ptr<Channel> Channel::Create(std::unique_ptr<transport::Connector> connector,
                                         ChannelOptions options) {
  return std::shared_ptr<Channel>(new Channel(std::move(connector), std::move(options)));
}

Channel::Channel(std::unique_ptr<transport::Connector> connector, ChannelOptions options)
    : reactor_(connector->reactor()),
      connector_(std::move(connector)),
      options_(std::move(options)),
      target_(connector_->address()),
      backoff_(options_.backoff, options_.backoff_seed) {}

Channel::~Channel() {
  *alive_ = false;
  // Connections must die on the loop (Shutdown() does that); if the loop has
  // stopped, this thread is the only one left.
  waiting_.clear();
  active_.clear();
  conn_.reset();
  connecting_.reset();
}

void Channel::PostToLoop(absl::AnyInvocable<void()> fn) {
  reactor_.Post(Guarded(*this, [fn = std::move(fn)](Channel&) mutable { fn(); }));
}

// ---------------------------------------------------------------------------
// State

ConnectivityState Channel::GetState(bool try_to_connect) {
  ConnectivityState state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = info_.state;
    if (try_to_connect && state == ConnectivityState::kIdle && !connect_requested_) {
      connect_requested_ = true;
    } else {
      try_to_connect = false;
    }
  }
  if (try_to_connect) {
    RunOnLoop([this] {
      if (info_.state == ConnectivityState::kIdle) Connect();
    });
  }
  return state;
}

transport::WriteBufferAllocator Channel::write_allocator() {
  std::lock_guard<std::mutex> lock(mu_);
  return write_allocator_;
}

ChannelStateInfo Channel::state_info() {
  std::lock_guard<std::mutex> lock(mu_);
  return info_;
}

bool Channel::WaitForStateChange(ConnectivityState last, absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (info_.state == last) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    cv_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, absl::Seconds(1))));
  }
  return true;
}

bool Channel::WaitForReady(absl::Time deadline) {
  while (true) {
    const ConnectivityState s = GetState(/*try_to_connect=*/true);
    if (s == ConnectivityState::kReady) return true;
    if (s == ConnectivityState::kShutdown) return false;
    if (!WaitForStateChange(s, deadline)) return false;
  }
}

uint64_t Channel::AddStateWatcher(StateWatcher fn) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_watcher_++;
  watchers_.emplace(id, std::move(fn));
  return id;
}

void Channel::RemoveStateWatcher(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(id);
}

void Channel::SetState(ConnectivityState state, absl::Status error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (info_.state == ConnectivityState::kShutdown) return;
    if (info_.state == state && error.ok()) return;
    info_.state = state;
    if (!error.ok()) info_.last_error = std::move(error);
    if (state != ConnectivityState::kReady) info_.credit_blocked = false;
    if (state == ConnectivityState::kIdle) connect_requested_ = false;
  }
  cv_.notify_all();
  NotifyWatchers();
}

void Channel::SetCreditBlocked(bool blocked) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (info_.credit_blocked == blocked) return;
    info_.credit_blocked = blocked;
  }
  cv_.notify_all();
  NotifyWatchers();
}

void Channel::NotifyWatchers() {
  std::vector<StateWatcher> fns;
  ChannelStateInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, fn] : watchers_) fns.push_back(fn);
    info = info_;
  }
  for (const StateWatcher& fn : fns) fn(info);
}

// ---------------------------------------------------------------------------
// Connection management (reactor thread)

void Channel::Connect() {
  if (info_.state == ConnectivityState::kShutdown || conn_ != nullptr || connecting_ != nullptr) {
    return;
  }
  reconnect_timer_ = 0;
  absl::StatusOr<std::unique_ptr<transport::Connection>> c = connector_->Connect();
  if (!c.ok()) {
    ++stats_.connect_failures;
    SetState(ConnectivityState::kTransientFailure, c.status());
    FailWaitingCalls(/*all=*/false, absl::UnavailableError(c.status().message()));
    ScheduleReconnect();
    return;
  }
  connecting_ = *std::move(c);
  connecting_->SetEventHandler(
      Guarded(*this, [](Channel& self, const transport::ConnectionEvent& e) {
        self.OnConnectionEvent(e);
      }));
  SetState(ConnectivityState::kConnecting);
  if (connecting_ != nullptr && connecting_->state() == transport::ConnectionState::kOpen) {
    OnReady();
  }
}

void Channel::OnConnectionEvent(const transport::ConnectionEvent& e) {
  if (connecting_ == nullptr) return;
  if (e.type == transport::ConnectionEventType::kConnected) return OnReady();
  if (e.type == transport::ConnectionEventType::kClosed) {
    // Refused, reset or timed out while connecting.
    std::unique_ptr<transport::Connection> dead = std::move(connecting_);
    ++stats_.connect_failures;
    const absl::Status why = e.status.ok() ? absl::UnavailableError("connection closed") : e.status;
    SetState(ConnectivityState::kTransientFailure, why);
    FailWaitingCalls(/*all=*/false,
                     absl::UnavailableError(absl::StrCat("connect to ", target_, ": ", why.message())));
    ScheduleReconnect();
    reactor_.Post([dead = std::shared_ptr<transport::Connection>(std::move(dead))] {});
  }
}

void Channel::OnReady() {
  std::unique_ptr<transport::Connection> transport = std::move(connecting_);
  ++stats_.connects;
  {
    std::lock_guard<std::mutex> lock(mu_);
    write_allocator_ = transport->write_buffer_allocator();
  }
  backoff_.Reset();
  RpcConnection::Callbacks callbacks;
  callbacks.on_event =
      Guarded(*this, [](Channel& self, SessionEvent& e) { self.OnSessionEvent(e); });
  callbacks.on_closed = Guarded(
      *this, [](Channel& self, const absl::Status& why) { self.OnConnectionLost(why); });
  callbacks.on_credit =
      Guarded(*this, [](Channel& self, bool blocked) { self.SetCreditBlocked(blocked); });
  conn_ = std::make_unique<RpcConnection>(std::move(transport), Session::Role::kClient,
                                          options_.session, std::move(callbacks));
  SetState(ConnectivityState::kReady);
  ArmKeepalive();
  StartWaitingCalls();
}

void Channel::RetireConnection() {
  if (conn_ == nullptr || retiring_) return;
  retiring_ = true;
  conn_->Close(absl::UnavailableError("the server went away (GOAWAY)"));
}

void Channel::OnConnectionLost(const absl::Status& why) {
  if (conn_ == nullptr) return;
  last_transport_stats_ = conn_->transport().stats();
  // Dispose of the connection after this callback unwinds.
  reactor_.Post([dead = std::shared_ptr<RpcConnection>(std::move(conn_))] {});
  if (keepalive_timer_ != 0) reactor_.CancelTimer(keepalive_timer_);
  keepalive_timer_ = 0;
  ping_outstanding_ = false;
  draining_ = false;
  if (retiring_) {
    retiring_ = false;
    SetState(ConnectivityState::kIdle);
    if (!waiting_.empty()) Connect();
    return;
  }
  SetState(ConnectivityState::kTransientFailure, why);
  FailWaitingCalls(/*all=*/false, absl::UnavailableError(why.message()));
  ScheduleReconnect();
}

void Channel::ScheduleReconnect() {
  if (info_.state == ConnectivityState::kShutdown || reconnect_timer_ != 0) return;
  reconnect_timer_ = reactor_.RunAfter(backoff_.Next(), Guarded(*this, [](Channel& self) {
                                         self.reconnect_timer_ = 0;
                                         self.Connect();
                                       }));
}

void Channel::ArmKeepalive() {
  if (options_.keepalive_time == absl::InfiniteDuration() || conn_ == nullptr) return;
  const absl::Duration delay =
      ping_outstanding_ ? options_.keepalive_timeout : options_.keepalive_time;
  keepalive_timer_ = reactor_.RunAfter(delay, Guarded(*this, [](Channel& self) {
                                         self.keepalive_timer_ = 0;
                                         self.OnKeepalive();
                                       }));
}

void Channel::OnKeepalive() {
  if (conn_ == nullptr) return;
  if (ping_outstanding_) {
    conn_->Close(absl::UnavailableError("keepalive ping not answered"));
    return;
  }
  ping_outstanding_ = true;
  conn_->session().Ping(++ping_seq_, conn_->out());
  conn_->Flush();
  ArmKeepalive();
}

void Channel::OnSessionEvent(SessionEvent& e) {
  switch (e.type) {
    case SessionEventType::kPingAck:
      if (e.ping == ping_seq_ && ping_outstanding_) {
        ping_outstanding_ = false;
        if (keepalive_timer_ != 0) reactor_.CancelTimer(keepalive_timer_);
        keepalive_timer_ = 0;
        ArmKeepalive();
      }
      return;
    case SessionEventType::kSettings:
      StartWaitingCalls();
      return;
    case SessionEventType::kGoAway:
      // Running calls finish here; new ones wait for the next connection.
      draining_ = true;
      if (active_.empty()) RetireConnection();
      return;
    default:
      break;
  }
  auto it = active_.find(e.stream);
  if (it == active_.end()) return;
  std::shared_ptr<ClientCall> call = it->second;  // may end inside
  call->OnEvent(e);
}

// ---------------------------------------------------------------------------
// Calls (reactor thread)

void Channel::Enqueue(std::shared_ptr<ClientCall> call) {
  ++stats_.calls_started;
  if (info_.state == ConnectivityState::kShutdown) {
    return call->Finish(absl::UnavailableError("channel is shut down"), {});
  }
  if (info_.state == ConnectivityState::kTransientFailure && !call->context_->wait_for_ready()) {
    return call->Finish(
        absl::UnavailableError(absl::StrCat("channel to ", target_, " is in TRANSIENT_FAILURE: ",
                                            state_info().last_error.message())),
        {});
  }
  waiting_.push_back(std::move(call));
  if (conn_ != nullptr) return StartWaitingCalls();
  if (info_.state == ConnectivityState::kIdle) Connect();
}

void Channel::StartWaitingCalls() {
  // Calls start once the server's SETTINGS are in: before, its concurrency
  // limit is unknown and calls beyond it would be refused.
  if (conn_ != nullptr && !conn_->session().peer_settings_received()) return;
  while (conn_ != nullptr && !conn_->closed() && !draining_ && !waiting_.empty()) {
    std::shared_ptr<ClientCall> call = waiting_.front();
    if (call->phase_ != ClientCall::Phase::kWaiting) {
      waiting_.pop_front();
      continue;
    }
    RequestHeaders headers;
    headers.method.swap(call->method_);  // handed back if the call must wait
    if (call->context_->deadline() != absl::InfiniteFuture()) {
      headers.timeout = call->context_->deadline() - absl::Now();
    }
    headers.metadata = call->context_->metadata();
    absl::StatusOr<uint32_t> stream = conn_->session().StartCall(headers, conn_->out());
    if (!stream.ok()) {
      if (absl::IsResourceExhausted(stream.status())) {  // wait for a free slot
        call->method_.swap(headers.method);
        break;
      }
      waiting_.pop_front();
      call->Finish(stream.status(), {});
      continue;
    }
    waiting_.pop_front();
    active_[*stream] = call;
    call->Activate(*stream);
  }
  if (conn_ != nullptr) conn_->Flush();
}

void Channel::FailWaitingCalls(bool all, const absl::Status& why) {
  std::deque<std::shared_ptr<ClientCall>> keep;
  std::deque<std::shared_ptr<ClientCall>> fail;
  for (auto& call : waiting_) {
    if (all || !call->context_->wait_for_ready()) {
      fail.push_back(std::move(call));
    } else {
      keep.push_back(std::move(call));
    }
  }
  waiting_ = std::move(keep);
  for (auto& call : fail) call->Finish(why, {});
}

void Channel::CallEnded(const ClientCall& call, const absl::Status& status) {
  if (status.ok()) {
    ++stats_.calls_succeeded;
  } else {
    ++stats_.calls_failed;
  }
  if (call.stream_ != 0) active_.erase(call.stream_);
  if (draining_ && active_.empty()) {
    reactor_.Post(Guarded(*this, [](Channel& self) {
      if (self.draining_ && self.active_.empty()) self.RetireConnection();
    }));
    return;
  }
  // A slot may have opened under the server's concurrency limit.
  if (!waiting_.empty()) {
    reactor_.Post(Guarded(*this, [](Channel& self) { self.StartWaitingCalls(); }));
  }
}

// ---------------------------------------------------------------------------
// Snapshots and shutdown (any thread)

transport::CreditInfo Channel::credit() { return stats().credit; }

ChannelStats Channel::stats() {
  std::promise<ChannelStats> result;
  RunOnLoop([&] {
    ChannelStats s = stats_;
    if (conn_ != nullptr) {
      s.transport = conn_->transport().stats();
      s.credit = conn_->transport().credit();
    } else {
      s.transport = last_transport_stats_;
    }
    result.set_value(s);
  });
  return result.get_future().get();
}

void Channel::Shutdown() {
  std::promise<void> done;
  RunOnLoop([&] {
    if (info_.state != ConnectivityState::kShutdown) {
      if (reconnect_timer_ != 0) reactor_.CancelTimer(reconnect_timer_);
      if (keepalive_timer_ != 0) reactor_.CancelTimer(keepalive_timer_);
      reconnect_timer_ = keepalive_timer_ = 0;
      SetState(ConnectivityState::kShutdown, absl::UnavailableError("channel shut down"));
      {
        std::lock_guard<std::mutex> lock(mu_);
        info_.state = ConnectivityState::kShutdown;
      }
      FailWaitingCalls(/*all=*/true, absl::UnavailableError("channel shut down"));
      std::vector<std::shared_ptr<ClientCall>> calls;
      for (auto& [id, call] : active_) calls.push_back(call);
      for (auto& call : calls) call->CancelWith(absl::UnavailableError("channel shut down"));
      if (conn_ != nullptr) {
        last_transport_stats_ = conn_->transport().stats();
        conn_->Close(absl::UnavailableError("channel shut down"));
        conn_.reset();
      }
      connecting_.reset();
      // The transport under the connector (a driver, a device) belongs to
      // this loop: release it here, not on whichever thread drops the
      // channel last.
      connector_.reset();
    }
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace rpc
}  // namespace vrpc
