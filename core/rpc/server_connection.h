// File: core/rpc/server_connection.h
//
// ServerConnection: the server side of one RPC connection (internal to
// Server): an RpcConnection, the calls running on it, and their deadline
// timers. Reactor thread only; ServerCalls reach it through Post().
#ifndef VRPC_CORE_RPC_SERVER_CONNECTION_H_
#define VRPC_CORE_RPC_SERVER_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/io/reactor.h"
#include "core/rpc/rpc_connection.h"
#include "core/rpc/server_call.h"

namespace vrpc {
namespace rpc {

class Server;

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(Server& server, io::Reactor& reactor);
  // Starts serving |transport|.
  void Start(std::unique_ptr<transport::Connection> transport);

  io::Reactor& reactor() { return reactor_; }
  RpcConnection* rpc() { return conn_.get(); }
  // Runs |fn| on the reactor if the connection is still alive then.
  void Post(std::function<void(ServerConnection&)> fn);

  // Reactor thread.
  // Tracks a started call; a finite |timeout| cancels it with
  // DEADLINE_EXCEEDED when it passes.
  void Register(uint32_t stream, std::shared_ptr<ServerCall> call, absl::Duration timeout);
  void CallFinished(uint32_t stream);
  void GoAway();
  void CancelAll(const absl::Status& why);
  void Close(const absl::Status& why);
  // Ends the connection after its queued output: EOF to the peer, which
  // closes; OnClosed follows then.
  void CloseWhenFlushed();
  size_t active_calls() const { return calls_.size(); }
  const std::string& peer() const { return peer_; }
  // The transport's write-buffer allocator (null: heap), fixed at Start.
  const transport::WriteBufferAllocator& write_allocator() const { return write_allocator_; }
  // The transport's counters (kept after it closed).
  transport::ConnectionStats transport_stats() const {
    return conn_ != nullptr ? conn_->transport().stats() : transport::ConnectionStats();
  }

 private:
  void OnEvent(SessionEvent& e);
  void OnClosed(const absl::Status& why);

  Server& server_;
  io::Reactor& reactor_;
  std::unique_ptr<RpcConnection> conn_;
  std::string peer_;
  transport::WriteBufferAllocator write_allocator_;
  struct Running {
    std::shared_ptr<ServerCall> call;
    io::TimerId deadline_timer = 0;
  };
  absl::flat_hash_map<uint32_t, Running> calls_;
  bool closed_ = false;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_SERVER_CONNECTION_H_
