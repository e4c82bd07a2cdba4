// File: transport_vsock/dial/dial.h
//
// Addresses to endpoints: the one place that turns an address string
// (core/transport/address.h) into a transport::Listener or Connector, owning
// whatever transport runs underneath. Programs (examples, agents, tools) and
// the cross-transport test suites go through here, so a new transport is
// one more case here and works everywhere.
//
//   scheme        Listen(address)                 Dial(address)
//   loopback      host side of an in-process      guest side, to the host port
//                 LoopbackTransport, host port
//   virtio-user   the userspace guest driver on   the driver, to CID 2 (the host)
//                 the vhost-user socket; guest
//                 port (CID: ours or any)
//   vhost-user    vrpc's device serving the VM    the device, to the guest's port
//                 GUEST_CID on the socket; host
//                 port
//   unix, vsock,  kernel sockets                  kernel sockets (hvsock: the
//   hvsock        (not hvsock)                    hybrid CONNECT handshake)
//
// Sharing. Endpoints opened on the same reactor for the same userspace
// transport (loopback; a virtio-user or vhost-user socket path) share one
// driver, device server or loopback pair, which lives as long as any
// endpoint opened through here does. A vhost-user device takes one
// frontend at a time: a second driver on the same socket (another reactor
// or process) is refused and Dial/Listen report kUnavailable.
//
// Threading: call on |reactor|'s thread (or before it runs), like every
// transport call; the endpoints belong to that reactor. Bringing a
// virtio-user driver up blocks for the vhost-user handshake (bounded), so
// the device must not be served by the same reactor.
#ifndef VRPC_TRANSPORT_VSOCK_DIAL_DIAL_H_
#define VRPC_TRANSPORT_VSOCK_DIAL_DIAL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/io/reactor.h"
#include "core/transport/listener.h"
#include "transport_vsock/device/vm_server.h"

namespace vrpc {
namespace dial {

struct DialOptions {
  // How the userspace transports wait for work: "interrupt" (eventfds),
  // "poll" (busy-poll on the reactor) or "adaptive". Applies to the
  // virtio-user driver and the vhost-user device this call creates.
  std::string notify_mode = "interrupt";
};

// Listens at |address|. kInvalidArgument for a malformed address or a form
// that cannot listen; transport errors as they come (kAlreadyExists: the
// port is taken; kUnavailable: no device at a virtio-user socket).
absl::StatusOr<std::unique_ptr<transport::Listener>> Listen(absl::string_view address,
                                                            io::Reactor& reactor,
                                                            const DialOptions& options = {});

// A connector to |address|; errors as Listen. Connecting itself happens
// later (Connector::Connect), as often as the channel asks.
absl::StatusOr<std::unique_ptr<transport::Connector>> Dial(absl::string_view address,
                                                           io::Reactor& reactor,
                                                           const DialOptions& options = {});

// Serves a VM's device as the host agent does (vhost-user socket, hybrid
// socket, ring mode from |spec|), shared like the devices Listen and Dial
// create: vhost-user: addresses for |spec.socket| on |reactor| reach it
// while the caller holds it. kAlreadyExists if this process already serves
// that socket on |reactor|; socket errors as VmServer::Create.
absl::StatusOr<std::shared_ptr<vsock::VmServer>> ServeVm(const vsock::VmSpec& spec,
                                                        io::Reactor& reactor);

}  // namespace dial
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DIAL_DIAL_H_
