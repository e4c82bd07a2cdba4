// File: core/rpc/server.h
//
// Server: serves registered services on any number of core/transport
// listeners. Each accepted connection runs a Session (role server) on the
// listener's reactor; each call runs its handler on a worker thread with a
// blocking ServerCall (or, for methods marked Service::RunInline, on the
// reactor once the request is complete), and the handler's status becomes
// the trailers.
//
//   auto server = Server::Create(options);
//   server->RegisterService(&echo_service);       // before Start
//   server->AddListener(std::move(listener));     // any time
//   ...
//   server->Shutdown(absl::Now() + absl::Seconds(5));  // GOAWAY, drain, cancel the rest
//
// Deadlines from the client's timeout are enforced here too: at the
// deadline the call is cancelled (the handler sees IsCancelled) and the
// client gets DEADLINE_EXCEEDED. An unknown method gets UNIMPLEMENTED.
//
// Threading: public methods are thread-safe; listeners must all belong to
// the same reactor, whose thread must keep running until Shutdown returns.
#ifndef VRPC_CORE_RPC_SERVER_H_
#define VRPC_CORE_RPC_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/io/reactor.h"
#include "core/rpc/server_call.h"
#include "core/rpc/service.h"
#include "core/rpc/session.h"
#include "core/rpc/worker_pool.h"
#include "core/transport/listener.h"

namespace vrpc {
namespace rpc {

struct ServerOptions {
  SessionOptions session;
  size_t max_worker_threads = 256;
  // Whether to serve a peer at all, by its address in the project's syntax
  // (transport::Connection::peer_address, e.g. "vsock:3:1035"). A non-OK
  // status closes the connection at once (vsock: RST). Null: everyone.
  // Runs on the reactor thread; keep it short.
  std::function<absl::Status(const std::string& peer)> accept_peer;
  // Whether to run |method| (e.g. "/vrpc.agent.Agent/Exec") for |peer|. A
  // non-OK status (PERMISSION_DENIED, say) ends the call with it and the
  // handler never runs. Only asked for served methods. Null: every call.
  std::function<absl::Status(const std::string& method, const std::string& peer)> authorize;
};

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t calls_started = 0;
  uint64_t calls_finished = 0;
  uint64_t calls_cancelled = 0;
  uint64_t calls_unimplemented = 0;
  uint64_t calls_denied = 0;          // by ServerOptions::authorize
  uint64_t connections_refused = 0;   // by ServerOptions::accept_peer
  size_t active_calls = 0;
  size_t open_connections = 0;
  // Transport payload bytes copied, all connections (transport::ConnectionStats).
  uint64_t rx_bytes_copied = 0;
  uint64_t tx_bytes_copied = 0;
};

class Server {
 public:
  explicit Server(ServerOptions options = ServerOptions());
  // Shuts down at once if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds the service's methods; the service must outlive the server.
  // kAlreadyExists for a method registered twice.
  absl::Status RegisterService(Service* service);

  // Serves connections from |listener| (on the listener's reactor).
  void AddListener(std::unique_ptr<transport::Listener> listener);

  // Stops accepting, sends GOAWAY on every connection, lets running calls
  // finish until |deadline|, then cancels the rest. Connections without
  // calls end gracefully (queued output, then EOF; the peer closes, waited
  // for until the deadline or at least 100 ms); whatever is left is closed.
  // Blocks until done. Call from outside the reactor thread.
  void Shutdown(absl::Time deadline);

  // Hops to the reactor for the open connections' transport counters: call
  // from outside the reactor thread.
  ServerStats stats();

 private:
  friend class ServerConnection;
  void OnConnection(io::Reactor& reactor, std::unique_ptr<transport::Connection> c);
  void CallStarted(const std::shared_ptr<ServerConnection>& conn, SessionEvent& e);
  void CallDone(bool cancelled);
  void ConnectionClosed(ServerConnection* conn);

  const ServerOptions options_;
  std::map<std::string, const Service::Method*> methods_;
  std::unique_ptr<WorkerPool> workers_;

  std::mutex mu_;
  std::condition_variable cv_;
  io::Reactor* reactor_ = nullptr;  // of the first listener
  std::vector<std::shared_ptr<transport::Listener>> listeners_;  // reactor thread
  absl::flat_hash_map<ServerConnection*, std::shared_ptr<ServerConnection>> conns_;  // reactor
  std::atomic<bool> shutting_down_{false};
  ServerStats stats_;  // under mu_
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_SERVER_H_
