#include "core/rpc/server.h"

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/logging.h"
#include "core/rpc/server_connection.h"

namespace vrpc {
namespace rpc {
namespace {

// How long Shutdown waits at least for peers to close after EOF.
constexpr absl::Duration kMinCloseGrace = absl::Milliseconds(100);

}  // namespace

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      workers_(std::make_unique<WorkerPool>(options_.max_worker_threads)) {}

Server::~Server() {
  bool running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running = reactor_ != nullptr && !shutting_down_;
  }
  if (running) Shutdown(absl::Now());
  workers_.reset();  // handlers have all returned
  *alive_ = false;
}

absl::Status Server::RegisterService(Service* service) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& m : service->methods()) {
    if (!methods_.emplace(m->name, m.get()).second) {
      return absl::AlreadyExistsError(absl::StrCat("method ", m->name, " registered twice"));
    }
  }
  return absl::OkStatus();
}

void Server::AddListener(std::unique_ptr<transport::Listener> listener) {
  io::Reactor& reactor = listener->reactor();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (reactor_ == nullptr) reactor_ = &reactor;
  }
  std::shared_ptr<transport::Listener> shared(std::move(listener));
  reactor.Post([this, shared, &reactor, alive = alive_] {
    if (!*alive || shutting_down_) return;
    shared->SetAcceptHandler([this, &reactor](std::unique_ptr<transport::Connection> c) {
      OnConnection(reactor, std::move(c));
    });
    listeners_.push_back(shared);
  });
}

void Server::OnConnection(io::Reactor& reactor, std::unique_ptr<transport::Connection> c) {
  if (shutting_down_) return;  // dropping |c| closes it
  if (options_.accept_peer) {
    if (absl::Status s = options_.accept_peer(c->peer_address()); !s.ok()) {
      VRPC_LOG(WARNING) << "refusing " << c->peer_address() << ": " << s;
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.connections_refused;
      return;  // dropping |c| resets it
    }
  }
  auto conn = std::make_shared<ServerConnection>(*this, reactor);
  conns_[conn.get()] = conn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.connections_accepted;
    stats_.open_connections = conns_.size();
  }
  conn->Start(std::move(c));
}

void Server::ConnectionClosed(ServerConnection* conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  // Destroy after the current callback unwinds.
  std::shared_ptr<ServerConnection> dead = std::move(it->second);
  conns_.erase(it);
  const transport::ConnectionStats t = dead->transport_stats();
  dead->reactor().Post([dead] {});
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.open_connections = conns_.size();
    stats_.rx_bytes_copied += t.rx_bytes_copied;
    stats_.tx_bytes_copied += t.tx_bytes_copied;
  }
  cv_.notify_all();  // Shutdown waits for the last one
}

namespace {

// Runs |handler| for |call|: its status, but CANCELLED for a call that was
// cancelled while the handler returned OK.
absl::Status RunHandler(const Service::Handler& handler, ServerCall& call) {
  absl::Status status = handler(call);
  if (call.context().IsCancelled() && status.ok()) status = absl::CancelledError();
  return status;
}

}  // namespace

void Server::CallStarted(const std::shared_ptr<ServerConnection>& conn, SessionEvent& e) {
  RpcConnection& rpc = *conn->rpc();
  const Service::Method* method = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.calls_started;
    auto it = methods_.find(e.headers.method);
    if (it != methods_.end()) method = it->second;
    if (method == nullptr) {
      ++stats_.calls_unimplemented;
    } else {
      ++stats_.active_calls;  // undone below if the call is refused
    }
  }
  absl::Status refused;
  if (method == nullptr) {
    refused = absl::UnimplementedError(
        absl::StrCat("method ", e.headers.method, " is not served here"));
  } else if (options_.authorize) {
    refused = options_.authorize(e.headers.method, conn->peer());
  }
  if (!refused.ok()) {
    if (method != nullptr) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.calls_denied;
        --stats_.active_calls;
      }
      cv_.notify_all();  // Shutdown may wait for active_calls to reach 0
    }
    (void)rpc.session().Finish(
        e.stream, CallStatus{refused.code(), std::string(refused.message()), {}}, rpc.out());
    rpc.Flush();
    return;
  }
  const absl::Time deadline = e.headers.timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + e.headers.timeout;
  auto context = std::make_unique<ServerContext>(std::move(e.headers.method), deadline,
                                                 std::move(e.headers.metadata), conn->peer());
  auto call = std::make_shared<ServerCall>(conn, e.stream, std::move(context));
  conn->Register(e.stream, call, e.headers.timeout);
  if (method->reactor) {
    // Every event of the call goes to its reactor, on this thread.
    std::unique_ptr<ServerCallReactor> reactor = method->reactor(*call);
    if (reactor == nullptr) {
      call->Finish(absl::InternalError("the method's reactor factory made no reactor"));
      CallDone(false);
      return;
    }
    call->ServeWith(std::move(reactor), [this](bool cancelled) { CallDone(cancelled); });
    return;
  }
  if (method->run_inline) {
    // On this reactor thread, once the request is complete.
    call->RunInlineWhenComplete([this, handler = &method->handler](ServerCall& c, bool run) {
      if (run) {
        c.Finish(RunHandler(*handler, c));
      }
      CallDone(!run || c.context().IsCancelled());
    });
    return;
  }
  std::weak_ptr<ServerConnection> weak = conn;
  workers_->Submit([this, call, weak, handler = &method->handler] {
    const absl::Status status = RunHandler(*handler, *call);
    if (auto c = weak.lock()) {
      c->Post([call, status](ServerConnection&) { call->Finish(status); });
    }
    CallDone(call->context().IsCancelled());
  });
}

void Server::CallDone(bool cancelled) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --stats_.active_calls;
    ++stats_.calls_finished;
    if (cancelled) ++stats_.calls_cancelled;
  }
  cv_.notify_all();
}

void Server::Shutdown(absl::Time deadline) {
  io::Reactor* reactor;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    reactor = reactor_;
  }
  if (reactor != nullptr) {
    // Stop accepting; GOAWAY everywhere.
    std::promise<void> phase1;
    reactor->Post([&] {
      listeners_.clear();
      for (auto& [ptr, conn] : conns_) conn->GoAway();
      phase1.set_value();
    });
    phase1.get_future().wait();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (stats_.active_calls > 0) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      cv_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, absl::Milliseconds(100))));
    }
  }
  if (reactor != nullptr) {
    // Cancel what is left. Connections whose calls all ended close
    // gracefully: the output still queued (trailers, GOAWAY) goes out, then
    // EOF, and the peer closes; a vsock Close() would drop what the peer has
    // not taken yet. The rest close now.
    std::promise<void> phase2;
    reactor->Post([&] {
      std::vector<std::shared_ptr<ServerConnection>> conns;
      for (auto& [ptr, conn] : conns_) conns.push_back(conn);
      for (auto& conn : conns) {
        if (conn->active_calls() == 0) {
          conn->CloseWhenFlushed();
          continue;
        }
        conn->CancelAll(absl::UnavailableError("server shut down"));
        conn->Close(absl::UnavailableError("server shut down"));
      }
      phase2.set_value();
    });
    phase2.get_future().wait();
    // Wait for those peers (they close once they read EOF), up to the
    // deadline and at least a short grace, then close what is left.
    // (No connection is accepted any more: the count only goes down.)
    const absl::Time grace = std::max(deadline, absl::Now() + kMinCloseGrace);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, absl::ToChronoTime(grace),
                     [this] { return stats_.open_connections == 0; });
    }
    std::promise<void> phase3;
    reactor->Post([&] {
      std::vector<std::shared_ptr<ServerConnection>> conns;
      for (auto& [ptr, conn] : conns_) conns.push_back(conn);
      for (auto& conn : conns) {
        conn->CancelAll(absl::UnavailableError("server shut down"));
        conn->Close(absl::UnavailableError("server shut down"));
      }
      conns_.clear();
      phase3.set_value();
    });
    phase3.get_future().wait();
  }
  // Handlers see cancellation and return.
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stats_.active_calls == 0; });
}

ServerStats Server::stats() {
  io::Reactor* reactor;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reactor = shutting_down_ ? nullptr : reactor_;
  }
  transport::ConnectionStats open;
  if (reactor != nullptr) {
    std::promise<void> done;
    reactor->Post([&] {
      for (auto& [ptr, conn] : conns_) {
        const transport::ConnectionStats t = conn->transport_stats();
        open.rx_bytes_copied += t.rx_bytes_copied;
        open.tx_bytes_copied += t.tx_bytes_copied;
      }
      done.set_value();
    });
    done.get_future().wait();
  }
  std::lock_guard<std::mutex> lock(mu_);
  ServerStats s = stats_;
  s.rx_bytes_copied += open.rx_bytes_copied;
  s.tx_bytes_copied += open.tx_bytes_copied;
  return s;
}

}  // namespace rpc
}  // namespace vrpc
