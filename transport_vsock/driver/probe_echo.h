// File: transport_vsock/driver/probe_echo.h
//
// The two halves of vsock_probe, on any core/transport endpoints:
//
//   EchoClient  sends N bytes of a position-dependent pattern (serialized
//               straight into the connection's write buffers), half-closes,
//               reads the echo, and verifies every byte at its offset.
//   EchoServer  echoes each accepted connection (what it reads, it writes
//               back, under flow control) until the peer's EOF, then
//               half-closes; done after COUNT connections ended.
//
// Both run on the endpoints' reactor thread and report through a callback
// once, when done (OK only for verified success).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PROBE_ECHO_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PROBE_ECHO_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/buffer/slice.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"

namespace vrpc {
namespace vsock {

// The pattern byte at stream offset |i|.
uint8_t ProbePatternByte(uint64_t i);
// Writes the pattern for stream offsets [offset, offset + n) to |out|.
void ProbePatternFill(uint64_t offset, uint8_t* out, size_t n);
// How many of the |n| bytes at |data| differ from the pattern at |offset|.
uint64_t ProbePatternMismatches(uint64_t offset, const uint8_t* data, size_t n);

class EchoClient {
 public:
  using Done = absl::AnyInvocable<void(absl::Status)>;
  // Starts at once. Does not take ownership of |connector|, which need only
  // live through this call.
  EchoClient(transport::Connector& connector, uint64_t bytes, Done done);
  EchoClient(const EchoClient&) = delete;
  EchoClient& operator=(const EchoClient&) = delete;

  uint64_t received() const { return received_; }
  absl::Duration elapsed() const { return end_ - start_; }
  const transport::Connection* connection() const { return conn_.get(); }

 private:
  void OnEvent(const transport::ConnectionEvent& e);
  void Send();
  void Receive();
  void Finish(absl::Status status);

  const uint64_t bytes_;
  Done done_;
  std::unique_ptr<transport::Connection> conn_;
  SliceChain pending_;
  uint64_t generated_ = 0;
  uint64_t received_ = 0;
  bool shut_ = false;
  bool finished_ = false;
  absl::Time start_, end_;
};

class EchoServer {
 public:
  using Done = absl::AnyInvocable<void(absl::Status)>;
  // Takes ownership of |listener|; done after |count| connections ended
  // (with an error if any of them failed before the peer's EOF).
  EchoServer(std::unique_ptr<transport::Listener> listener, uint64_t count, Done done);
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  uint64_t echoed_bytes() const { return echoed_; }

 private:
  struct Echo {
    std::unique_ptr<transport::Connection> conn;
    SliceChain pending;
    bool shut = false;
  };
  void Accept(std::unique_ptr<transport::Connection> conn);
  void OnEvent(Echo* echo, const transport::ConnectionEvent& e);
  void Pump(Echo& echo);
  void End(Echo* echo, absl::Status status);

  std::unique_ptr<transport::Listener> listener_;
  const uint64_t count_;
  Done done_;
  uint64_t ended_ = 0;
  uint64_t echoed_ = 0;
  absl::Status first_error_;
  absl::flat_hash_map<Echo*, std::unique_ptr<Echo>> echoes_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PROBE_ECHO_H_
