// File: core/rpc/channel.h
//
// Channel: the client side of vrpc, bound to one target through a
// transport::Connector. It owns at most one transport connection at a time
// and exposes its life as gRPC's connectivity states, built from what the
// vsock transport reports (docs/channel_states.md):
//
//   IDLE ──call or GetState(true)──> CONNECTING ──kConnected──> READY
//   CONNECTING ──refused / reset / timeout──> TRANSIENT_FAILURE
//   READY ──RST / transport reset / peer close / keepalive timeout──> TRANSIENT_FAILURE
//   TRANSIENT_FAILURE ──backoff (1 s, x1.6, +-20 %, max 120 s)──> CONNECTING
//   READY ──GOAWAY, running calls done──> IDLE (reconnects at once for waiting calls)
//   any ──Shutdown()──> SHUTDOWN
//
// READY has an observable sub-state: credit-blocked, while the transport
// says the peer's vsock window is full. Watchers see every state and
// credit-blocked change; credit() is the transport's credit snapshot.
//
// Calls made while the channel is not READY wait for it, except that a call
// fails fast with UNAVAILABLE in TRANSIENT_FAILURE unless its context asks to
// wait for ready. Deadlines bound the wait.
//
// Threading: every public method is thread-safe. Internally everything runs
// on the connector's reactor thread (which the application drives); call and
// watcher callbacks run there. The Channel must be destroyed (last
// shared_ptr dropped) off that thread or after the reactor stopped.
#ifndef VRPC_CORE_RPC_CHANNEL_H_
#define VRPC_CORE_RPC_CHANNEL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/io/reactor.h"
#include "core/rpc/backoff.h"
#include "core/rpc/rpc_connection.h"
#include "core/rpc/session.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"

namespace vrpc {
namespace rpc {

class ClientCall;

enum class ConnectivityState { kIdle, kConnecting, kReady, kTransientFailure, kShutdown };
const char* ConnectivityStateName(ConnectivityState state);

struct ChannelOptions {
  SessionOptions session;
  BackoffPolicy backoff;
  // Keepalive: a PING after this long without one; the connection is
  // dropped (TRANSIENT_FAILURE) if no answer comes within the timeout.
  absl::Duration keepalive_time = absl::InfiniteDuration();
  absl::Duration keepalive_timeout = absl::Seconds(20);
  uint64_t backoff_seed = 1;
};

struct ChannelStateInfo {
  ConnectivityState state = ConnectivityState::kIdle;
  bool credit_blocked = false;
  absl::Status last_error;  // why the last connection failed or ended
};

struct ChannelStats {
  uint64_t calls_started = 0;
  uint64_t calls_succeeded = 0;
  uint64_t calls_failed = 0;
  uint64_t connects = 0;           // transport connections established
  uint64_t connect_failures = 0;
  // Of the current (or last) transport connection.
  transport::ConnectionStats transport;
  transport::CreditInfo credit;
};

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  using StateWatcher = std::function<void(const ChannelStateInfo&)>;

  static std::shared_ptr<Channel> Create(std::unique_ptr<transport::Connector> connector,
                                         ChannelOptions options = ChannelOptions());
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // The current state; with |try_to_connect|, an IDLE channel starts
  // connecting.
  ConnectivityState GetState(bool try_to_connect);
  ChannelStateInfo state_info();
  // Blocks until the state differs from |last| (true) or |deadline| (false).
  bool WaitForStateChange(ConnectivityState last, absl::Time deadline);
  // Blocks until READY (true) or |deadline| / SHUTDOWN (false); connects.
  bool WaitForReady(absl::Time deadline);
  // |fn| runs on the reactor thread after every change of state or of
  // credit-blocked, in order. Returns an id for RemoveStateWatcher.
  uint64_t AddStateWatcher(StateWatcher fn);
  void RemoveStateWatcher(uint64_t id);

  // Snapshots (hop to the reactor thread; do not call from it).
  transport::CreditInfo credit();
  // Where calls serialize their messages: the current connection's
  // transport memory (zero copy on the userspace guest driver), or heap
  // (null) before the first connection. Thread-safe.
  transport::WriteBufferAllocator write_allocator();
  ChannelStats stats();

  // Cancels every call (CANCELLED... UNAVAILABLE "channel shut down"),
  // closes the connection, releases the connector (and the transport it
  // owns) on the reactor thread, and enters SHUTDOWN for good. Waits for the
  // reactor thread, which must be running.
  void Shutdown();

  io::Reactor& reactor() { return reactor_; }
  const std::string& target() const { return target_; }

 private:
  friend class ClientCall;
  Channel(std::unique_ptr<transport::Connector> connector, ChannelOptions options);

  // ---- Reactor thread ----
  void SetState(ConnectivityState state, absl::Status error = absl::OkStatus());
  void SetCreditBlocked(bool blocked);
  void NotifyWatchers();
  void Connect();
  void OnConnectionEvent(const transport::ConnectionEvent& e);
  void OnReady();
  void OnConnectionLost(const absl::Status& why);
  void ScheduleReconnect();
  // After GOAWAY with no call left: close the connection, go IDLE, and
  // reconnect at once if calls are waiting.
  void RetireConnection();
  void OnSessionEvent(SessionEvent& e);
  void ArmKeepalive();
  void OnKeepalive();
  // Calls.
  void Enqueue(std::shared_ptr<ClientCall> call);
  void StartWaitingCalls();
  void FailWaitingCalls(bool all, const absl::Status& why);
  void CallEnded(const ClientCall& call, const absl::Status& status);
  // Runs |fn| now when called on the loop, else posts it (run only while the
  // channel lives). A template so the in-loop case builds no closure object.
  template <typename Fn>
  void RunOnLoop(Fn&& fn) {
    if (reactor_.InLoop()) {
      fn();
      return;
    }
    PostToLoop(absl::AnyInvocable<void()>(std::forward<Fn>(fn)));
  }
  void PostToLoop(absl::AnyInvocable<void()> fn);

  io::Reactor& reactor_;
  std::unique_ptr<transport::Connector> connector_;
  const ChannelOptions options_;
  const std::string target_;
  Backoff backoff_;

  // Reactor-thread state.
  std::unique_ptr<transport::Connection> connecting_;
  std::unique_ptr<RpcConnection> conn_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<ClientCall>> active_;  // by stream
  std::deque<std::shared_ptr<ClientCall>> waiting_;
  io::TimerId reconnect_timer_ = 0;
  io::TimerId keepalive_timer_ = 0;
  bool ping_outstanding_ = false;
  bool draining_ = false;  // GOAWAY received: no new calls on conn_
  bool retiring_ = false;
  uint64_t ping_seq_ = 0;
  std::map<uint64_t, StateWatcher> watchers_;
  uint64_t next_watcher_ = 1;
  ChannelStats stats_;
  transport::ConnectionStats last_transport_stats_;

  // Shared with other threads.
  std::mutex mu_;
  transport::WriteBufferAllocator write_allocator_;  // guarded by mu_
  std::condition_variable cv_;
  ChannelStateInfo info_;
  bool connect_requested_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_CHANNEL_H_
