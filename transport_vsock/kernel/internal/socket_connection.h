// File: transport_vsock/kernel/internal/socket_connection.h
//
// SocketConnection: transport::Connection over one non-blocking kernel
// socket (AF_UNIX or AF_VSOCK; SOCK_STREAM or SOCK_SEQPACKET), driven by the
// readiness of its fd on an io::Reactor. See docs/transports.md, "Kernel
// sockets", for how the kernel's view maps onto the Connection events.
//
// SOCK_SEQPACKET is still a byte stream to the application: records are
// read whole (RxBuffer::RecvRecord) and concatenated in order; Write()
// sends records of at most kMaxRecordOut bytes (halved on EMSGSIZE). A
// record that does not fit the receive room, or a vsock send that the
// kernel may have cut short (EAGAIN after POLLOUT), ends the connection
// with DATA_LOSS: bytes are never silently dropped or duplicated.
//
//   connecting  connect(2) in flight (POLLOUT, then SO_ERROR); a full Unix
//               backlog (EAGAIN) is retried every 10 ms; for hybrid vsock,
//               then "CONNECT <port>\n" out and one "OK <n>\n" line in.
//               The whole phase is bounded by KernelOptions::connect_timeout.
//   open        POLLIN while the bounded RxBuffer has room and EOF was not
//               seen; POLLOUT only while a Write() hit EAGAIN; with neither,
//               a POLLHUP-only watch (hang-up and errors still end it).
//   closed      orderly (OK): EOF read, every byte taken by Read(), and our
//               side shut down writing (or the kernel says the peer is gone:
//               POLLHUP / EPIPE). Otherwise the socket error (UNAVAILABLE,
//               DEADLINE_EXCEEDED for ETIMEDOUT). The fd is closed; bytes
//               already received stay readable.
//
// Events are queued and delivered in order: from the fd's callback on the
// same reactor turn, and from the application's calls (Write's
// kCreditBlocked, Read's orderly kClosed, connect results) on a later turn,
// never from inside the call.
//
// Thread-safety: everything on the reactor's thread (connection.h).
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKET_CONNECTION_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKET_CONNECTION_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"
#include "core/buffer/slice.h"
#include "core/io/reactor.h"
#include "core/transport/connection.h"
#include "transport_vsock/kernel/internal/rx_buffer.h"
#include "transport_vsock/kernel/internal/sockets.h"
#include "transport_vsock/kernel/options.h"

namespace vrpc {
namespace kernel {
namespace internal {

class SocketConnection final : public transport::Connection {
 public:
  // An open, connected socket (accepted, or adopted). Takes ownership of
  // |fd|. Does not take ownership of |reactor|, which must outlive it.
  static std::unique_ptr<SocketConnection> Open(UniqueFd fd, io::Reactor& reactor,
                                                const KernelOptions& options);

  // Starts connecting |fd| (a fresh non-blocking socket, owned from now on)
  // to |to|; |peer_address| names it. With |hybrid_port|, the hybrid
  // handshake for that guest port follows. A failure to connect is reported
  // as kClosed on a later reactor turn, never from here.
  static std::unique_ptr<SocketConnection> Connect(UniqueFd fd, const SockAddr& to,
                                                   std::string peer_address,
                                                   std::optional<uint32_t> hybrid_port,
                                                   io::Reactor& reactor,
                                                   const KernelOptions& options);

  // Aborts (close(2)) if still open.
  ~SocketConnection() override;
  SocketConnection(const SocketConnection&) = delete;
  SocketConnection& operator=(const SocketConnection&) = delete;

  io::Reactor& reactor() override { return reactor_; }
  void SetEventHandler(EventHandler handler) override;
  transport::ConnectionState state() const override { return state_; }
  absl::Status status() const override { return status_; }
  absl::StatusOr<SliceChain> Read(size_t max) override;
  bool AtEof() const override;
  absl::StatusOr<size_t> Write(SliceChain& data) override;
  absl::Status ShutdownWrite() override;
  void Close() override;
  transport::CreditInfo credit() const override;
  transport::ConnectionStats stats() const override;
  std::string peer_address() const override { return peer_address_; }

  // SOCK_SEQPACKET: the largest record Write() sends.
  static constexpr size_t kMaxRecordOut = 64 * 1024;
  // SOCK_SEQPACKET, tests only: reads as on a kernel that cannot peek a
  // record's length, with a receive room of |max_record_in| bytes.
  void DisableRecordPeekForTesting(size_t max_record_in);
  // SOCK_SEQPACKET: the current bound on sent records.
  size_t record_out_for_testing() const { return record_out_; }

 private:
  enum class Phase {
    kConnect,    // connect(2) in flight, or a full backlog being retried
    kHandshake,  // hybrid: sending CONNECT, then reading the OK line
    kOpen,
    kDone,       // closed: the fd is gone
  };

  SocketConnection(UniqueFd fd, io::Reactor& reactor, const KernelOptions& options);

  // connect(2) and what it says.
  void TryConnect();
  // The socket connected: hybrid handshake or open.
  void OnConnected();
  void SendHandshake();
  void ReadHandshake();
  void BecomeOpen();

  void OnReady(uint32_t revents);
  void OnOpenReady(uint32_t revents);
  struct ReadResult {
    size_t got = 0;  // bytes queued
    bool eof = false;
    int err = 0;     // errno of a failed recv
    size_t truncated = 0;  // seqpacket: length of a record that did not fit
  };
  // Reads into the RxBuffer until EAGAIN, EOF, an error or full. Sets
  // peer_eof_; the caller queues events and fails on |err|.
  ReadResult ReadSocket();
  bool WantRead() const;
  // recv(2) once (a record, for seqpacket): > 0 bytes, 0 EOF, -1 errno;
  // sets |truncated| to a record's length when it did not fit.
  ssize_t RecvSome(size_t* truncated);
  // Sends one sendmsg(2) worth of |data| (a record, for seqpacket):
  // bytes sent, or -1 with errno (EAGAIN: nothing was sent).
  ssize_t SendSome(const SliceChain& data);
  void MaybeFinishOrderly();
  // Terminal: closes the fd, queues kClosed with |status|.
  void Fail(absl::Status status);
  // Unwatches, cancels timers and closes the fd.
  void ReleaseFd();
  void EndBlocked();
  // OK when Write/ShutdownWrite may proceed; otherwise their error.
  absl::Status WriteState() const;

  // Watches exactly the events the phase needs (or nothing).
  void UpdateWatch();
  void Queue(transport::ConnectionEventType type, absl::Status status = absl::OkStatus());
  // Delivers queued events now (may destroy |this|).
  void Drain();
  // Delivers queued events on a later reactor turn.
  void ScheduleDrain();

  io::Reactor& reactor_;
  const KernelOptions options_;
  UniqueFd fd_;
  bool vsock_ = false;
  bool seqpacket_ = false;
  size_t max_record_in_ = 0;               // seqpacket: receive room per record
  size_t record_out_ = kMaxRecordOut;      // seqpacket: largest record sent
  std::string peer_address_;
  Phase phase_ = Phase::kOpen;
  transport::ConnectionState state_ = transport::ConnectionState::kOpen;
  absl::Status status_;

  // Connecting.
  SockAddr connect_to_;
  std::optional<uint32_t> hybrid_port_;
  std::string handshake_out_;  // unsent part of "CONNECT <port>\n"
  io::TimerId connect_timer_ = 0;
  io::TimerId retry_timer_ = 0;
  bool connect_in_flight_ = false;  // connect(2) returned; wait for POLLOUT

  io::WatchId watch_ = 0;
  uint32_t watched_ = 0;

  RxBuffer rx_;
  bool peer_eof_ = false;   // read returned 0
  bool peer_gone_ = false;  // POLLHUP or EPIPE: the peer receives no more
  bool write_shut_ = false;
  bool app_closed_ = false;
  bool tx_blocked_ = false;
  absl::Time blocked_since_;
  absl::Duration time_blocked_;
  uint32_t local_buf_alloc_ = 0;  // vsock: SO_VM_SOCKETS_BUFFER_SIZE
  uint64_t bytes_received_ = 0;   // payload bytes recv'd (handshake excluded)
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;

  std::shared_ptr<EventHandler> handler_;
  std::deque<transport::ConnectionEvent> pending_;
  bool drain_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_SOCKET_CONNECTION_H_
