// File: transport_vsock/protocol/engine.h
//
// Engine: the virtio-vsock connection logic of one endpoint (the host side of
// one VM, or a guest), as a pure state machine. It follows Linux's
// virtio_transport_common.c (see the seed walk-through):
//
//   Connect()  -> OP_REQUEST, CONNECTING (TCP_SYN_SENT)
//   OP_RESPONSE            -> ESTABLISHED, kConnected
//   OP_RST while connecting-> kRefused;   no answer in time -> RST, kReset
//   OP_REQUEST to a listener -> OP_RESPONSE and the accept queue (kIncoming),
//                             or OP_RST when nothing listens / backlog full
//   OP_RW under credit (credit.h); CREDIT_REQUEST when blocked, CREDIT_UPDATE
//                             when consumed bytes cross a threshold or asked
//   OP_SHUTDOWN(RCV|SEND)  -> half-close; both directions -> RST -> closed;
//                             a closing side that hears nothing RSTs on timeout
//
// Sans-I/O: the engine never touches rings, sockets or clocks. Inputs are
// application calls, received packets (OnPacket) and the time (|now|
// arguments, OnTimer); outputs are appended to an Actions sink: packets for
// the transport to send and events for the application. Transports own the
// I/O and call the engine; see docs/architecture.md.
//
// Untrusted input: every packet is judged by CheckHeader first; a peer that
// breaks the protocol (credit overrun, fwd_cnt out of range, data after its
// SHUTDOWN(SEND), wrong op for the state) has its connection reset, never the
// engine. Memory per connection is bounded by buf_alloc (payload) and
// buf_alloc / copy_below (slices); connections by max_connections.
//
// Not thread-safe: one thread (the transport's) drives an engine.
#ifndef VRPC_TRANSPORT_VSOCK_PROTOCOL_ENGINE_H_
#define VRPC_TRANSPORT_VSOCK_PROTOCOL_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/buffer/slice.h"
#include "transport_vsock/protocol/credit.h"
#include "transport_vsock/protocol/rx_queue.h"
#include "transport_vsock/protocol/types.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {

struct EngineConfig {
  uint64_t local_cid = 0;  // our CID (kCidHost on the host side)
  uint64_t peer_cid = 0;   // the only peer this engine talks to
  // Receive buffer advertised per connection (Linux default 256 KiB).
  uint32_t buf_alloc = 256 * 1024;
  // The most we keep in flight to one peer connection, whatever it offers.
  uint32_t max_tx_window = 1024 * 1024;
  // Largest RW payload we send, and accept (<= kMaxPacketPayload).
  uint32_t max_packet_payload = kMaxPacketPayload;
  // Send CREDIT_UPDATE once this many consumed bytes are unadvertised.
  uint32_t credit_update_threshold = 64 * 1024;
  // Also send one whenever a read drains the receive queue. Off, a
  // request/response exchange needs no CREDIT_UPDATE (the reply carries
  // fwd_cnt). On, the update reaches the peer while we work on what we
  // read: where the peer sleeps between packets (interrupt-driven rings on
  // a VM) it wakes during our work instead of after it, which hides a
  // wake-up from each exchange. The driver and the device turn it on
  // unless they poll.
  bool credit_update_on_drain = false;
  // Received payloads shorter than this are copied (see rx_queue.h).
  uint32_t copy_below = 128;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration close_timeout = absl::Seconds(2);
  size_t max_connections = 1024;
  // Ephemeral local ports come from [first, last]; the search starts at a
  // point derived from |port_seed| (Linux picks a random start).
  uint32_t ephemeral_port_first = 1024;
  uint32_t ephemeral_port_last = 0x7fffffff;
  uint64_t port_seed = 0;
};

enum class ConnState {
  kConnecting,   // OP_REQUEST sent, waiting for OP_RESPONSE (TCP_SYN_SENT)
  kEstablished,  // TCP_ESTABLISHED; half-closes are in ConnInfo's flags
  kClosed,       // terminal: refused, reset, timed out or closed; see status
};

std::string ConnStateName(ConnState state);

// What the application can ask about a connection.
struct ConnInfo {
  ConnState state = ConnState::kClosed;
  SocketType type = SocketType::kStream;
  uint32_t local_port = 0;
  uint32_t peer_port = 0;
  uint32_t local_shutdown = 0;  // kShutdown* bits we sent
  uint32_t peer_shutdown = 0;   // kShutdown* bits the peer sent
  bool credit_blocked = false;
  absl::Duration time_blocked;  // total, including the current blocked spell
  absl::Status status;          // why it is kClosed (OK for an orderly close)
  CreditSnapshot credit;
  uint64_t rx_copied_bytes = 0;  // received payload bytes copied (small ones)
};

struct EngineStats {
  uint64_t packets_in = 0;
  uint64_t packets_out = 0;
  uint64_t dropped = 0;           // misaddressed, or for nothing we know
  uint64_t malformed = 0;         // answered with RST by CheckHeader
  uint64_t protocol_errors = 0;   // connections reset for breaking the protocol
  uint64_t rst_sent = 0;
  uint64_t refused = 0;           // REQUESTs refused (no listener, backlog, limit)
  uint64_t copied_bytes = 0;      // payload bytes memcpy'd (small payloads)
  size_t connections = 0;         // records alive, closed-but-unreleased included
};

class Engine {
 public:
  // Validates |config|: CIDs must differ, have zero upper bits, and one side
  // must be the host (kCidHost) and the other a valid guest CID or kCidLocal
  // loopback; sizes must be non-zero. Returns kInvalidArgument otherwise.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config);

  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- Application calls. Packets and events go to |out|. ----

  // Starts a connection to |peer_port| from |local_port| (0 = ephemeral) and
  // sends OP_REQUEST. kConnected, kRefused or kReset follows. Returns
  // kAlreadyExists if the local port is taken, kResourceExhausted at the
  // connection limit or when no ephemeral port is free.
  absl::StatusOr<ConnId> Connect(uint32_t peer_port, SocketType type, absl::Time now,
                                 Actions& out, uint32_t local_port = 0);

  // Accepts connections on |port|, at most |backlog| waiting for Accept().
  // Returns kAlreadyExists if the port is in use, kInvalidArgument for port
  // VMADDR_PORT_ANY or a zero backlog.
  absl::Status Listen(uint32_t port, SocketType type, size_t backlog);
  // Stops listening; connections not yet accepted are reset.
  void Unlisten(uint32_t port, Actions& out);
  // Takes the oldest connection waiting on |port| (kPortAny: on the
  // any-port listener), if any. The application owns it from now on and must
  // Close() it.
  std::optional<ConnId> Accept(uint32_t port);

  // Any-port listener: takes every OP_REQUEST to a port with no listener of
  // its own, WITHOUT answering it, so the application can decide per port
  // (the hybrid host forwards guest port P to the Unix socket <uds>_P and
  // must first see whether anything listens there). Each waits in the queue
  // of Accept(kPortAny), announced by kIncoming with the requested port; the
  // application then calls Respond() to send OP_RESPONSE, or Close() to
  // refuse with OP_RST. Unanswered requests are refused after
  // connect_timeout. kAlreadyExists if one is installed; remove it with
  // Unlisten(kPortAny).
  absl::Status ListenAnyPort(SocketType type, size_t backlog);
  // Answers an accepted any-port request with OP_RESPONSE: ESTABLISHED.
  // kFailedPrecondition if |id| is not waiting for an answer.
  absl::Status Respond(ConnId id, Actions& out);

  // STREAM: sends a prefix of |data| as OP_RW packets, as far as peer credit
  // allows, removing it from |data| (the packets share its Slices). Returns
  // the bytes taken, possibly 0; if any are left the connection is
  // credit-blocked (kCreditBlocked, CREDIT_REQUEST) until kCreditRestored.
  // Errors: kNotFound (unknown id), kFailedPrecondition (not established,
  // wrong type, or we or the peer shut the direction down: EPIPE),
  // kUnavailable (closed: the status says why).
  absl::StatusOr<size_t> Send(ConnId id, SliceChain& data, absl::Time now, Actions& out);

  // SEQPACKET: sends |message| whole, fragmented to max_packet_payload, the
  // last fragment marked EOM (and EOR if |end_of_record|). All or nothing:
  // returns kUnavailable (credit-blocked; retry on kCreditRestored) if the
  // peer's credit can't take it now, kResourceExhausted (EMSGSIZE) if it is
  // larger than the peer's whole window, kInvalidArgument if empty; other
  // errors as for Send.
  absl::Status SendMessage(ConnId id, SliceChain message, bool end_of_record,
                           absl::Time now, Actions& out);

  // STREAM: removes up to |max| received bytes (zero copy) and returns them;
  // an empty result means nothing is buffered (see AtEof). May send
  // CREDIT_UPDATE. After a reset, buffered data can still be read and then
  // the reset status is returned. kNotFound / kFailedPrecondition as above.
  absl::StatusOr<SliceChain> Read(ConnId id, size_t max, Actions& out);

  // SEQPACKET: the oldest complete message, or nullopt if none is buffered.
  absl::StatusOr<std::optional<Message>> ReadMessage(ConnId id, Actions& out);

  // True once the peer shut down sending (or the connection closed) and all
  // its data has been read.
  bool AtEof(ConnId id) const;

  // Sends OP_SHUTDOWN with |flags| (kShutdownRcv/kShutdownSend, cumulative).
  // kInvalidArgument for other bits or none; kFailedPrecondition unless
  // established.
  absl::Status Shutdown(ConnId id, uint32_t flags, absl::Time now, Actions& out);

  // Releases the application's handle. An established connection is shut
  // down both ways and lingers (invisible) until the peer's RST, or
  // close_timeout, then RSTs; with unread data it is reset at once, as TCP
  // does. A connecting one is reset. The id is invalid afterwards.
  void Close(ConnId id, absl::Time now, Actions& out);

  // Changes the receive buffer advertised for |id| (SO_VM_SOCKETS_BUFFER_SIZE)
  // and tells the peer with CREDIT_UPDATE.
  absl::Status SetBufferSize(ConnId id, uint32_t buf_alloc, Actions& out);

  // ---- Transport inputs. ----

  // Handles one packet from the peer. |payload| holds header.len bytes (a
  // mismatch is treated as malformed). Never fails: bad packets are dropped
  // or answered with RST and counted in stats().
  void OnPacket(const Header& header, SliceChain payload, absl::Time now, Actions& out);

  // Fires the timers due at |now| (connect and close timeouts).
  void OnTimer(absl::Time now, Actions& out);
  // When OnTimer next has work, if ever.
  std::optional<absl::Time> NextDeadline() const;

  // The transport under the engine was reset or lost (device reset,
  // TRANSPORT_RESET event, frontend gone): every connection ends with
  // kReset(|reason|), lingering ones vanish, no packets are sent. Listeners
  // stay.
  void ResetAll(const absl::Status& reason, Actions& out);

  // Adopts a new local CID (the guest re-reads guest_cid after
  // TRANSPORT_RESET). Call ResetAll first. kInvalidArgument if invalid.
  absl::Status SetLocalCid(uint64_t cid);

  // ---- Queries. ----

  // kNotFound for an unknown or released id. |now| completes time_blocked.
  absl::StatusOr<ConnInfo> GetInfo(ConnId id, absl::Time now) const;
  const EngineStats& stats() const { return stats_; }
  const EngineConfig& config() const { return config_; }

 private:
  struct Connection;
  struct Listener {
    SocketType type;
    size_t backlog;
    std::deque<ConnId> pending;
    bool defer_response = false;  // the any-port listener
  };
  // (local port, peer port) of a live connection.
  using PortPair = std::pair<uint32_t, uint32_t>;

  explicit Engine(const EngineConfig& config);

  // Packet dispatch by state.
  void HandleNoConnection(const Header& h, absl::Time now, Actions& out);
  void HandleRequest(const Header& h, absl::Time now, Actions& out);
  void HandleConnecting(Connection& c, const Header& h, absl::Time now, Actions& out);
  void HandleEstablished(Connection& c, const Header& h, SliceChain&& payload,
                         absl::Time now, Actions& out);
  void HandleLingering(Connection& c, const Header& h, SliceChain&& payload,
                       absl::Time now, Actions& out);
  void HandleData(Connection& c, const Header& h, SliceChain&& payload, absl::Time now,
                  Actions& out);
  void HandlePeerShutdown(Connection& c, const Header& h, absl::Time now, Actions& out);

  // Connection lifecycle.
  Connection& NewConnection(SocketType type, uint32_t local_port, uint32_t peer_port);
  void Terminate(Connection& c, EventType event, absl::Status status, absl::Time now,
                 Actions& out);
  void ProtocolError(Connection& c, absl::Status why, absl::Time now, Actions& out);
  void MaybeFinishClose(Connection& c, absl::Time now, Actions& out);
  void EndBlocked(Connection& c, absl::Time now);
  absl::Status CheckWritable(const Connection& c) const;
  void Release(ConnId id);
  void SetDeadline(Connection& c, absl::Time deadline);
  void UpdateBlocked(Connection& c, absl::Time now, Actions& out);
  void Block(Connection& c, uint32_t want, absl::Time now, Actions& out);
  void MaybeAdvertiseCredit(Connection& c, Actions& out);

  // Output.
  void Emit(Connection& c, Op op, uint32_t flags, SliceChain&& payload, Actions& out);
  void EmitRst(const Header& in_reply_to, Actions& out);
  void EmitEvent(Actions& out, EventType type, ConnId conn, absl::Status status = {},
                 uint32_t port = 0, uint32_t flags = 0);

  // Lookup helpers.
  Connection* Find(ConnId id);
  const Connection* Find(ConnId id) const;
  absl::StatusOr<Connection*> FindOwned(ConnId id);
  bool LocalPortInUse(uint32_t port) const;
  absl::StatusOr<uint32_t> PickEphemeralPort();

  EngineConfig config_;
  EngineStats stats_;
  uint64_t next_id_ = 1;
  uint32_t port_cursor_;
  absl::flat_hash_map<ConnId, std::unique_ptr<Connection>> conns_;
  // Find's last answer (connections are heap-held, so the pointer stays
  // good until that id is erased; ids are never reused): a connection's
  // packets and calls come in runs, and each would otherwise hash again.
  mutable ConnId found_id_;
  mutable Connection* found_ = nullptr;
  absl::flat_hash_map<PortPair, ConnId> by_ports_;
  // Local ports held by connections we initiated, with their owner.
  absl::flat_hash_map<uint32_t, ConnId> bound_ports_;
  absl::flat_hash_map<uint32_t, Listener> listeners_;
  std::set<std::pair<absl::Time, ConnId>> deadlines_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_PROTOCOL_ENGINE_H_
