// File: transport_vsock/protocol/types.h
//
// The values that go in and out of the sans-I/O protocol engine: connection
// handles, outgoing packets, notifications, and the Actions sink that
// collects both.
#ifndef VRPC_TRANSPORT_VSOCK_PROTOCOL_TYPES_H_
#define VRPC_TRANSPORT_VSOCK_PROTOCOL_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/buffer/slice.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {

// Names one connection of one Engine for its whole life, from Connect() or
// Accept() until the application's Close(). Ids are never reused by an
// engine, so a stale id can't reach a newer connection on the same ports.
struct ConnId {
  uint64_t value = 0;
  bool valid() const { return value != 0; }
  friend bool operator==(ConnId a, ConnId b) { return a.value == b.value; }
  friend bool operator!=(ConnId a, ConnId b) { return a.value != b.value; }
  friend bool operator<(ConnId a, ConnId b) { return a.value < b.value; }
  template <typename H>
  friend H AbslHashValue(H h, ConnId id) {
    return H::combine(std::move(h), id.value);
  }
};

// A packet for the transport to put on the wire. The payload Slices share the
// application's buffers (no copy): the transport copies them into the ring or
// holds them until the peer has them.
struct Packet {
  Header header;
  SliceChain payload;  // header.len == payload.size()
};

// Notifications to the application. Channel states are built from these:
// docs/channel_states.md has the mapping.
enum class EventType {
  kConnected,       // our OP_REQUEST was answered with OP_RESPONSE: ESTABLISHED
  kRefused,         // OP_RST while CONNECTING (ECONNREFUSED / ECONNRESET)
  kIncoming,        // a connection waits in the accept queue of |port|
  kReadable,        // data, a complete message, or end-of-stream to read
  kCreditBlocked,   // a send stopped for lack of peer credit; CREDIT_REQUEST sent
  kCreditRestored,  // the peer granted enough credit: writable again
  kPeerShutdown,    // OP_SHUTDOWN from the peer; |flags| holds all its bits so far
  kReset,           // the connection died: |status| says why (OP_RST from the
                    // peer, connect timeout, protocol violation, transport reset)
  kClosed,          // orderly close finished (both sides shut down, RST exchanged)
};

std::string EventTypeName(EventType type);

struct Event {
  EventType type;
  ConnId conn;         // invalid for kIncoming
  uint32_t port = 0;   // kIncoming: the listening port
  uint32_t flags = 0;  // kPeerShutdown: kShutdownRcv | kShutdownSend
  absl::Status status; // kRefused / kReset: the cause
};

// Collects what one or more engine calls produced, in order. The caller sends
// |packets| and delivers |events|, then Clear()s it for reuse (keeping the
// vectors' capacity). Not thread-safe.
struct Actions {
  std::vector<Packet> packets;
  std::vector<Event> events;

  bool empty() const { return packets.empty() && events.empty(); }
  void Clear() {
    packets.clear();
    events.clear();
  }
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_PROTOCOL_TYPES_H_
