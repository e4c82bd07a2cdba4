// File: transport_vsock/loopback/loopback.h
//
// LoopbackLink: two protocol engines back to back — a "host" (CID 2) and a
// "guest" (CID 3 by default) — joined by in-memory packet queues, with a
// manual clock and a socket-like API on each side. It is the whole vsock
// picture of the seed document minus the rings: the packets each side sends
// are exactly what the device and driver would put on the virtqueues.
//
// Deterministic and single-threaded: nothing happens until Pump() delivers
// queued packets or AdvanceTime() fires timers. A tap sees every packet
// before delivery and may drop or rewrite it (fault injection); a trace sees
// what was delivered (the protocol demo prints it).
//
// Payload handling mirrors a real transport: Write() copies the caller's
// bytes once into a Slice (as a socket's send() would), Send() takes Slices
// without copying, and Read() copies out; the engine itself copies only
// small payloads (counted in stats().copied_bytes).
//
// Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_LOOPBACK_LOOPBACK_H_
#define VRPC_TRANSPORT_VSOCK_LOOPBACK_LOOPBACK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/buffer/slice.h"
#include "transport_vsock/protocol/engine.h"
#include "transport_vsock/protocol/types.h"

namespace vrpc {
namespace vsock {

class LoopbackLink;

enum class Side { kHost, kGuest };
std::string SideName(Side side);

// One side of a LoopbackLink: an Engine plus a log of its events. Calls
// queue packets for the other side; call LoopbackLink::Pump() to deliver.
class LoopbackEndpoint {
 public:
  LoopbackEndpoint(const LoopbackEndpoint&) = delete;
  LoopbackEndpoint& operator=(const LoopbackEndpoint&) = delete;

  Engine& engine() { return *engine_; }
  Side side() const { return side_; }

  absl::StatusOr<ConnId> Connect(uint32_t peer_port, SocketType type = SocketType::kStream,
                                 uint32_t local_port = 0);
  absl::Status Listen(uint32_t port, size_t backlog = 16,
                      SocketType type = SocketType::kStream);
  void Unlisten(uint32_t port);
  std::optional<ConnId> Accept(uint32_t port);

  // Copies |bytes| into one Slice and sends as much as credit allows.
  // Returns the bytes taken (see Engine::Send).
  absl::StatusOr<size_t> Write(ConnId id, absl::string_view bytes);
  // Zero-copy send of a prefix of |data| (see Engine::Send).
  absl::StatusOr<size_t> Send(ConnId id, SliceChain& data);
  absl::Status SendMessage(ConnId id, absl::string_view message,
                           bool end_of_record = false);

  // Reads up to |max| bytes, copied into a string.
  absl::StatusOr<std::string> Read(ConnId id, size_t max = SIZE_MAX);
  // Zero-copy read (see Engine::Read).
  absl::StatusOr<SliceChain> ReadSlices(ConnId id, size_t max = SIZE_MAX);
  absl::StatusOr<std::optional<Message>> ReadMessage(ConnId id);
  bool AtEof(ConnId id) const { return engine_->AtEof(id); }

  absl::Status Shutdown(ConnId id, uint32_t flags);
  void Close(ConnId id);
  absl::Status SetBufferSize(ConnId id, uint32_t size);

  // kNotFound for an unknown or closed id.
  absl::StatusOr<ConnInfo> Info(ConnId id) const;

  // Every event so far, oldest first.
  const std::vector<Event>& events() const { return events_; }
  // The types of the events for |id| (or kIncoming for listeners when |id|
  // is invalid), oldest first.
  std::vector<EventType> EventsFor(ConnId id) const;
  bool HasEvent(ConnId id, EventType type) const;
  void ClearEvents() { events_.clear(); }

 private:
  friend class LoopbackLink;
  LoopbackEndpoint(LoopbackLink& link, Side side, std::unique_ptr<Engine> engine)
      : link_(link), side_(side), engine_(std::move(engine)) {}

  // Moves what the last engine call produced to the link and the event log.
  void Flush();

  LoopbackLink& link_;
  const Side side_;
  std::unique_ptr<Engine> engine_;
  Actions actions_;
  std::vector<Event> events_;
};

class LoopbackLink {
 public:
  struct Options {
    Options();
    EngineConfig host;   // local_cid 2, peer_cid 3
    EngineConfig guest;  // local_cid 3, peer_cid 2
    absl::Time start = absl::UnixEpoch();
  };

  // What a tap decides for one packet.
  enum class TapVerdict { kDeliver, kDrop };
  // Sees each packet, sent by |from|, before delivery; may rewrite it.
  using Tap = std::function<TapVerdict(Side from, Packet& packet)>;
  // Sees each packet as it is delivered.
  using Trace = std::function<void(Side from, const Packet& packet)>;

  // kInvalidArgument if either engine config is rejected.
  static absl::StatusOr<std::unique_ptr<LoopbackLink>> Create(const Options& options);
  static absl::StatusOr<std::unique_ptr<LoopbackLink>> Create() {
    return Create(Options());
  }

  LoopbackLink(const LoopbackLink&) = delete;
  LoopbackLink& operator=(const LoopbackLink&) = delete;

  LoopbackEndpoint& host() { return *host_; }
  LoopbackEndpoint& guest() { return *guest_; }
  LoopbackEndpoint& endpoint(Side side) { return side == Side::kHost ? host() : guest(); }

  // Delivers queued packets, alternating directions, until none are left
  // or |max_packets| were delivered. Returns the number delivered.
  size_t Pump(size_t max_packets = SIZE_MAX);

  // Moves the clock forward by |d|, firing both engines' timers at each
  // deadline passed, and pumping after each.
  void AdvanceTime(absl::Duration d);
  absl::Time now() const { return now_; }

  // Injects a raw packet as if |from| had sent it (a hostile peer).
  void Inject(Side from, Packet packet);

  void SetTap(Tap tap) { tap_ = std::move(tap); }
  void SetTrace(Trace trace) { trace_ = std::move(trace); }

  // Packets waiting for delivery towards |to|.
  size_t Queued(Side to) const;
  // The largest number of packets ever queued in one direction.
  size_t max_queued() const { return max_queued_; }

 private:
  friend class LoopbackEndpoint;
  explicit LoopbackLink(absl::Time start) : now_(start) {}

  void Enqueue(Side from, std::vector<Packet>& packets);
  bool DeliverOne(Side to);

  absl::Time now_;
  std::unique_ptr<LoopbackEndpoint> host_;
  std::unique_ptr<LoopbackEndpoint> guest_;
  std::deque<Packet> to_host_;
  std::deque<Packet> to_guest_;
  size_t max_queued_ = 0;
  Tap tap_;
  Trace trace_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_LOOPBACK_LOOPBACK_H_
