// File: core/transport/connection.h
//
// Connection: one reliable, ordered byte stream between two endpoints, as the
// RPC layer sees it. This is THE seam between core/rpc and the transports
// (the userspace vsock device and driver, kernel sockets, loopback): every
// transport offers the same object, with the same events, so channel states
// (CONNECTING, READY, credit-blocked, TRANSIENT_FAILURE, ...) are built once.
//
// Threading. A Connection belongs to one reactor thread (reactor()): every
// method is called there, every event is delivered there, and the object is
// destroyed there. Other threads hop with reactor().Post(...). Received
// Slices are the exception: they may be held and dropped on any thread.
//
// Zero copy. Read() returns views: on the userspace device a received
// payload is a Slice into the guest's memory, and dropping the last Slice
// hands the descriptor back to the guest's ring. Hold received data only as
// long as needed: until it is released, it counts against the peer's window
// (and, on the device, against the guest's tx ring). Write() takes Slices by
// reference, not bytes; the transport holds them until they are on the
// medium. Every payload byte a transport memcpy's is counted in stats().
//
// Flow control. Write() takes what the peer's window allows now and leaves
// the rest in the caller's chain; kCreditBlocked says the window is full,
// kWritable says it opened again. Nothing is buffered without bound.
//
// Event order for a connection that opens: [kConnected] then any of
// kReadable / kCreditBlocked / kWritable / kPeerShutdown, then exactly one
// kClosed (unless the application destroys or Close()s it first: a closed-by-
// the-application connection delivers no further events). An accepted
// connection is already open and never reports kConnected.
#ifndef VRPC_CORE_TRANSPORT_CONNECTION_H_
#define VRPC_CORE_TRANSPORT_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"

namespace vrpc {
namespace transport {

enum class ConnectionState {
  kConnecting,  // handshake outstanding (vsock: OP_REQUEST sent)
  kOpen,        // established; half-closes are visible through AtEof()
  kClosed,      // terminal
};

enum class ConnectionEventType {
  kConnected,      // handshake completed (vsock: OP_RESPONSE)
  kReadable,       // Read() has bytes, or AtEof() became true
  kCreditBlocked,  // the peer's receive window is full; writes stall
  kWritable,       // the window opened again after kCreditBlocked
  kPeerShutdown,   // the peer will send no more (after its buffered bytes)
  kClosed,         // terminal; status: OK for an orderly close, UNAVAILABLE
                   // for a refusal or reset (vsock OP_RST, TRANSPORT_RESET,
                   // device gone), DEADLINE_EXCEEDED for a connect timeout
};

const char* ConnectionEventTypeName(ConnectionEventType type);

struct ConnectionEvent {
  ConnectionEventType type;
  absl::Status status;  // kClosed only
};

// Flow-control counters, vsock's names; transports without credit (Unix
// sockets) leave the counters 0 and report blocking from EAGAIN.
struct CreditInfo {
  uint32_t peer_buf_alloc = 0;   // peer's receive buffer
  uint32_t peer_fwd_cnt = 0;     // bytes the peer has consumed
  uint32_t tx_cnt = 0;           // bytes we have sent
  uint32_t peer_credit = 0;      // what we may send right now
  uint32_t local_buf_alloc = 0;  // our receive buffer
  uint32_t local_fwd_cnt = 0;    // bytes we have consumed
  bool blocked = false;          // writes stalled on the peer's window
  absl::Duration time_blocked;   // in total, including the current spell
};

struct ConnectionStats {
  uint64_t bytes_read = 0;     // payload bytes returned by Read()
  uint64_t bytes_written = 0;  // payload bytes taken by Write()
  // Payload bytes the transport memcpy'd on their way to Read() (the
  // zero-copy paths keep this 0) and on their way from Write() to the medium.
  uint64_t rx_bytes_copied = 0;
  uint64_t tx_bytes_copied = 0;
};

// Hands out write buffers (see Connection::AllocateWriteBuffer): |size|
// bytes as a Slice, |*data| pointing at them for the caller to fill.
using WriteBufferAllocator = std::function<Slice(size_t size, uint8_t** data)>;

class Connection {
 public:
  using EventHandler = absl::AnyInvocable<void(const ConnectionEvent&)>;

  // Destroying an open connection aborts it (vsock: OP_RST); call
  // ShutdownWrite() and wait for kClosed for an orderly end.
  virtual ~Connection() = default;

  // The thread this connection lives on.
  virtual io::Reactor& reactor() = 0;

  // Replaces the handler. Events that happened before a handler was set are
  // not replayed: check state(), Read() and AtEof() after setting it. The
  // handler may call any method, including destroying the connection (then
  // it must not touch it again).
  virtual void SetEventHandler(EventHandler handler) = 0;

  virtual ConnectionState state() const = 0;
  // Why the connection closed (OK while open, or for an orderly close).
  virtual absl::Status status() const = 0;

  // Takes up to |max| received bytes as views (empty when none is
  // buffered). Consuming opens the peer's window. kFailedPrecondition once
  // closed by the application.
  virtual absl::StatusOr<SliceChain> Read(size_t max) = 0;
  // True once the peer shut down sending and every byte was read.
  virtual bool AtEof() const = 0;

  // Sends a prefix of |data| as the peer's window allows, removes it from
  // |data|, and returns its length (0 when blocked: wait for kWritable).
  // kFailedPrecondition after ShutdownWrite() or when not open;
  // kUnavailable when the peer no longer receives.
  virtual absl::StatusOr<size_t> Write(SliceChain& data) = 0;

  // Space for |size| payload bytes that Write() can send without copying:
  // on the userspace guest driver it lies in the memory the device reads, so
  // the RPC layer serializes straight into it. Fill |*data|, then Write()
  // the Slice (or part of it). Slices from elsewhere are accepted too, and
  // may cost a copy (counted in stats().tx_bytes_copied). Default: heap.
  virtual Slice AllocateWriteBuffer(size_t size, uint8_t** data) {
    return Slice::Allocate(size, data);
  }

  // AllocateWriteBuffer for other threads: a thread-safe allocator that
  // stays callable after the connection is gone (then it hands out heap
  // Slices). The RPC layer serializes on the application's threads with it,
  // straight into the transport's memory. Null (the default) means heap.
  virtual WriteBufferAllocator write_buffer_allocator() { return nullptr; }

  // No more writes; the peer sees EOF after everything written so far.
  virtual absl::Status ShutdownWrite() = 0;

  // Closes now (vsock: OP_SHUTDOWN both ways, then RST if the peer lingers;
  // unsent data is dropped). No events follow. Idempotent.
  virtual void Close() = 0;

  virtual CreditInfo credit() const = 0;
  virtual ConnectionStats stats() const = 0;
  // The peer's address in the project's address syntax, e.g. "vsock:3:5000".
  virtual std::string peer_address() const = 0;
};

}  // namespace transport
}  // namespace vrpc

#endif  // VRPC_CORE_TRANSPORT_CONNECTION_H_
