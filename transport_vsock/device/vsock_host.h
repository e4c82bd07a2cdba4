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
#include "transport_vsock/protocol/engine.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

// Where packets for the guest go.
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // Takes every packet out of |packets| (leaving it empty). Called on the
  // reactor thread; must not call back into the VsockHost.
  virtual void SendToGuest(std::vector<Packet>& packets) = 0;
};

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
  void OnGuestPacket(const Header& header, SliceChain payload);

  // The guest's transport went away (frontend disconnect, device reset):
  // every connection ends, every bridged socket is closed. Listeners stay.
  void OnTransportReset(const absl::Status& why);

  Engine& engine() { return *engine_; }
  // Open hybrid bridges (sockets being served).
  size_t bridge_count() const { return bridges_.size(); }

 private:
  class Bridge;
  VsockHost(const VsockHostOptions& options, io::Reactor& reactor, PacketSink& sink,
            std::unique_ptr<Engine> engine);

  absl::Status StartHybridListener();
  void AcceptHybridClients();
  void AcceptGuestConnections();
  Bridge& AddBridge(UniqueFd fd, bool handshake);
  void Flush();
  void Dispatch(const Event& event);
  void ScheduleTimer();
  void Reap();

  const VsockHostOptions options_;
  io::Reactor& reactor_;
  PacketSink& sink_;
  std::unique_ptr<Engine> engine_;
  Actions actions_;
  bool flushing_ = false;
  UniqueFd listen_fd_;
  io::WatchId listen_watch_ = 0;
  io::TimerId timer_ = 0;
  absl::Time timer_deadline_ = absl::InfiniteFuture();
  absl::flat_hash_map<Bridge*, std::unique_ptr<Bridge>> bridges_;
  absl::flat_hash_map<ConnId, Bridge*> by_conn_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_VSOCK_HOST_H_
