// File: transport_vsock/device/vsock_host.h
//
// VsockHost: the host side of one VM's vsock, independent of how packets
// reach the guest. It owns the protocol engine (host CID 2 <-> the guest's
// CID) and the host endpoints that use it, and runs on one reactor thread.
//
// Endpoints (Firecracker / vhost-device-vsock "hybrid vsock" compatible):
//  - host -> guest: a client connects to the Unix socket |uds_path| and
//    writes "CONNECT <port>\n"; once the guest accepts, it reads
//    "OK <port>\n" and has a byte stream; if the guest refuses, the socket is
//    closed.
//  - guest -> host: a guest connection to host port P is forwarded to the
//    Unix socket "<uds_path>_<P>"; if nothing listens there the guest gets
//    OP_RST.
// Half-close is carried both ways: a socket EOF becomes OP_SHUTDOWN(SEND)
// once its bytes are sent, and the guest's SHUTDOWN(SEND) becomes
// shutdown(SHUT_WR) once its bytes are written (HARDENING.md row 16).
// Backpressure is end to end: bytes are taken from the engine only as fast as
// the socket accepts them (so vsock credit stops), and read from a socket
// only while the guest grants credit.
//
// In-process endpoints (the core/transport seam the RPC layer uses): Listen()
// takes guest connections to one host port (ahead of <uds_path>_<port>), and
// ConnectorTo() opens host connections to a guest port (see
// transport_vsock/node/inprocess.h).
//
// The packet path is a PacketSink (the device's rx virtqueue; a guest engine
// in tests) and OnGuestPacket (the device's tx virtqueue).
//
// Thread-safety: everything runs on the reactor's thread.
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_HOST_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_HOST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/node/vsock_node.h"
#include "transport_vsock/protocol/engine.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

struct VsockHostOptions {
  uint64_t guest_cid = 0;
  // Hybrid sockets; empty disables both directions of forwarding.
  std::string uds_path;
  // Engine tuning; local_cid and peer_cid are filled in from guest_cid.
  EngineConfig engine;
  // Accept queue of the guest -> host any-port listener.
  size_t guest_connect_backlog = 128;
};

class VsockHost {
 public:
  // Creates the engine and, with a uds_path, binds and listens on it
  // (replacing a stale socket file). Does not take ownership of |reactor| or
  // |sink|; both must outlive the VsockHost. kInvalidArgument for a bad CID
  // or an over-long path; socket errors as absl::ErrnoToStatus.
  static absl::StatusOr<std::unique_ptr<VsockHost>> Create(const VsockHostOptions& options,
                                                           io::Reactor& reactor,
                                                           PacketSink& sink);
  // Closes every socket, unlinks uds_path and stops all timers.
  ~VsockHost();
  VsockHost(const VsockHost&) = delete;
  VsockHost& operator=(const VsockHost&) = delete;

  // A packet the guest sent (the device's tx path). |payload| may point into
  // guest memory; it is released when the engine no longer needs it.
  // |copied_bytes|: how much of the payload the transport had to copy (it is
  // charged to the connection's rx_bytes_copied).
  void OnGuestPacket(const Header& header, SliceChain payload, uint32_t copied_bytes = 0);

  // Takes guest connections to host |port| (kStream). kAlreadyExists if
  // something listens there already. The listener must be destroyed on the
  // reactor thread; it may outlive the VsockHost (then it accepts nothing).
  absl::StatusOr<std::unique_ptr<transport::Listener>> Listen(uint32_t port,
                                                              size_t backlog = 128) {
    return node_->Listen(port, backlog);
  }
  // Opens connections from the host to guest |port|. Same lifetime rules.
  std::unique_ptr<transport::Connector> ConnectorTo(uint32_t guest_port) {
    return node_->ConnectorTo(guest_port);
  }

  // The guest's transport went away (frontend disconnect, device reset):
  // every connection ends, every bridged socket is closed. Listeners stay.
  void OnTransportReset(const absl::Status& why);

  Engine& engine() { return node_->engine(); }
  VsockNode& node() { return *node_; }
  io::Reactor& reactor() { return reactor_; }
  uint64_t guest_cid() const { return options_.guest_cid; }
  // Open hybrid bridges (sockets being served).
  size_t bridge_count() const { return bridges_.size(); }

 private:
  class Bridge;
  VsockHost(const VsockHostOptions& options, io::Reactor& reactor);

  absl::Status StartHybridListener();
  void AcceptHybridClients();
  void AcceptGuestConnections();
  Bridge& AddBridge(UniqueFd fd, bool handshake);
  void Reap();

  const VsockHostOptions options_;
  io::Reactor& reactor_;
  std::unique_ptr<VsockNode> node_;
  UniqueFd listen_fd_;
  io::WatchId listen_watch_ = 0;
  absl::flat_hash_map<Bridge*, std::unique_ptr<Bridge>> bridges_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_HOST_H_
