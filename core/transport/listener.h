// File: core/transport/listener.h
//
// Listener: accepts connections that peers open to one address; Connector:
// opens connections to one address, as often as asked (a channel reconnects
// through the same Connector). Both belong to one reactor thread, like the
// connections they produce (see connection.h).
#ifndef VRPC_CORE_TRANSPORT_LISTENER_H_
#define VRPC_CORE_TRANSPORT_LISTENER_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/io/reactor.h"
#include "core/transport/connection.h"

namespace vrpc {
namespace transport {

class Listener {
 public:
  using AcceptHandler = absl::AnyInvocable<void(std::unique_ptr<Connection>)>;

  // Stops listening; connections already accepted are unaffected. Peers
  // still waiting in the backlog are refused.
  virtual ~Listener() = default;

  virtual io::Reactor& reactor() = 0;

  // Delivers each accepted, already open connection. Peers that arrived
  // before a handler was set wait in the backlog (bounded; beyond it they
  // are refused) and are delivered when it is set.
  virtual void SetAcceptHandler(AcceptHandler handler) = 0;

  // The address peers connect to, e.g. "vsock:2:5000".
  virtual std::string address() const = 0;
};

class Connector {
 public:
  virtual ~Connector() = default;

  virtual io::Reactor& reactor() = 0;

  // Starts a connection; it reports kConnected or kClosed (refused, reset,
  // timed out) through its handler. Errors here are local: no resources
  // (kResourceExhausted) or the transport is gone (kUnavailable).
  virtual absl::StatusOr<std::unique_ptr<Connection>> Connect() = 0;

  // The address connections go to.
  virtual std::string address() const = 0;
};

}  // namespace transport
}  // namespace vrpc

#endif  // VRPC_CORE_TRANSPORT_LISTENER_H_
