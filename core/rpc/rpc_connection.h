// File: core/rpc/rpc_connection.h
//
// RpcConnection: a Session (session.h) running over a transport Connection
// on the connection's reactor. It is the I/O edge of the sans-I/O session:
// every byte the transport delivers goes into the session (the reader never
// stalls, so one slow call cannot block the others; per-stream windows bound
// what is held), and the session's output is written as the transport's
// credit allows, kept in order in a pending chain meanwhile.
//
// Writes are corked for one reactor turn: everything the session produced in
// a turn (a call's HEADERS, its message and its HALF_CLOSE, say) goes to the
// transport in one Write, so small frames ride in large vsock packets instead
// of each costing a packet (and a small-packet copy at the receiver).
//
// Backpressure. Output the transport has no credit for waits in a pending
// chain. Once it reaches SessionOptions::max_unsent_bytes the session is
// told it is backlogged (no stream may send a message) until it drains to a
// quarter of that, so a sender's memory follows the transport's pace, not
// only the peer's RPC windows.
//
// Callers make session calls through session() and out(), then Flush(),
// which writes and delivers events; Flush is safe to re-enter from an event
// callback (the outer call picks up what the inner one added).
//
// Threading: the reactor thread only, including destruction.
#ifndef VRPC_CORE_RPC_RPC_CONNECTION_H_
#define VRPC_CORE_RPC_RPC_CONNECTION_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "core/buffer/slice.h"
#include "core/rpc/session.h"
#include "core/transport/connection.h"

namespace vrpc {
namespace rpc {

class RpcConnection {
 public:
  struct Callbacks {
    // Session events, in order.
    std::function<void(SessionEvent& event)> on_event;
    // Once: the transport closed, the peer went away, or a connection
    // error; open calls have already been ended by events.
    std::function<void(const absl::Status& why)> on_closed;
    // Transport credit: true when writes stall on the peer's vsock window.
    std::function<void(bool blocked)> on_credit;
  };

  // Takes an open |transport|.
  RpcConnection(std::unique_ptr<transport::Connection> transport, Session::Role role,
                const SessionOptions& options, Callbacks callbacks);
  // Closes the transport (no callbacks).
  ~RpcConnection();
  RpcConnection(const RpcConnection&) = delete;
  RpcConnection& operator=(const RpcConnection&) = delete;

  Session& session() { return session_; }
  SessionOutput& out() { return out_; }
  // Writes pending output and delivers events.
  void Flush();

  // Closes now: ends every call with |why| (events), reports on_closed.
  void Close(const absl::Status& why);
  // Closes after the pending output is written (graceful shutdown).
  void CloseWhenFlushed();

  bool closed() const { return closed_; }
  // Bytes waiting for transport credit.
  size_t pending_bytes() const { return pending_.size(); }
  transport::Connection& transport() { return *transport_; }

 private:
  void OnTransportEvent(const transport::ConnectionEvent& e);
  void ReadAll();
  void WritePending();
  void ScheduleWrite();
  // Tells the session whether pending_ is over (or back under) its limits.
  void UpdateBacklog();

  std::unique_ptr<transport::Connection> transport_;
  SessionOutput out_;
  std::vector<SessionEvent> spare_events_;  // Flush: capacity kept between turns
  Session session_;
  Callbacks callbacks_;
  const size_t max_unsent_bytes_;
  SliceChain pending_;
  bool flushing_ = false;
  bool closed_ = false;
  bool close_when_flushed_ = false;
  bool credit_blocked_ = false;
  bool write_posted_ = false;
  // This connection while it lives, null after: what posted closures and
  // callbacks that may outlive it check.
  std::shared_ptr<RpcConnection*> alive_ = std::make_shared<RpcConnection*>(this);
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_RPC_CONNECTION_H_
