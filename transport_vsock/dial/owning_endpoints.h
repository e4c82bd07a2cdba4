// File: transport_vsock/dial/owning_endpoints.h
//
// Endpoints that keep their transport alive. Every listener, connector and
// connection the dial layer hands out wraps the transport's own and holds
// a reference to what runs underneath (driver, device server, loopback
// pair), so a server that stops listening keeps its running calls. The last
// reference is dropped on a later reactor turn: it may go while the
// transport is calling us (a connection destroyed in its kClosed handler).
#ifndef VRPC_TRANSPORT_VSOCK_DIAL_OWNING_ENDPOINTS_H_
#define VRPC_TRANSPORT_VSOCK_DIAL_OWNING_ENDPOINTS_H_

#include <memory>

#include "core/transport/listener.h"

namespace vrpc {
namespace dial {

// |inner|, keeping |owner| alive while it (or anything it produces) lives.
std::unique_ptr<transport::Listener> OwningListener(std::unique_ptr<transport::Listener> inner,
                                                   std::shared_ptr<void> owner);
std::unique_ptr<transport::Connector> OwningConnector(std::unique_ptr<transport::Connector> inner,
                                                     std::shared_ptr<void> owner);

}  // namespace dial
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DIAL_OWNING_ENDPOINTS_H_
