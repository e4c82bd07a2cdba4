// File: transport_vsock/vhost_user/testing/scripted_frontend.h
//
// ScriptedFrontend: plays a vhost-user frontend (QEMU) over one end of a
// socketpair, for tests and fuzzing of the backend. It writes with raw
// sendmsg(), independently of the backend's Connection, so a test can send
// anything: lying sizes, split messages, too many descriptors, no payload.
// Test-only; environment errors CHECK-fail.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_SCRIPTED_FRONTEND_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_SCRIPTED_FRONTEND_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {
namespace testing {

// A reply read back from the backend.
struct Reply {
  MessageHeader header;
  std::vector<uint8_t> payload;
  size_t fds = 0;  // descriptors that came with it (closed at once)
};

class ScriptedFrontend {
 public:
  // A connected pair: the frontend keeps one end, |*backend_end| receives
  // the other (to give to Backend::Attach).
  static ScriptedFrontend CreatePair(UniqueFd* backend_end);
  // Wraps an already connected socket (e.g. to a Listener).
  explicit ScriptedFrontend(UniqueFd socket) : socket_(std::move(socket)) {}

  ScriptedFrontend(ScriptedFrontend&&) = default;
  ScriptedFrontend& operator=(ScriptedFrontend&&) = default;

  int fd() const { return socket_.get(); }

  // Sends a request whose header.size is the payload size. |fds| are
  // borrowed (duplicated by the kernel into the receiver).
  void Send(uint32_t request, uint32_t flags, absl::Span<const uint8_t> payload,
            absl::Span<const int> fds = {});
  // Sends |bytes| verbatim with |fds| attached to the first byte. Returns
  // false if the kernel refused (e.g. the peer is gone).
  bool SendRaw(absl::Span<const uint8_t> bytes, absl::Span<const int> fds = {});
  // Sends a header with an arbitrary size field and |payload| after it.
  void SendWithSize(uint32_t request, uint32_t flags, uint32_t size_field,
                    absl::Span<const uint8_t> payload,
                    absl::Span<const int> fds = {});

  // Reads one reply, waiting up to |timeout|; nullopt on timeout, EOF or a
  // malformed header.
  std::optional<Reply> ReadReply(absl::Duration timeout = absl::Seconds(2));
  // True if a byte can be read right now (or the backend closed).
  bool Readable();
  // Reads and discards everything readable now; returns the byte count.
  size_t Drain();

  // Shuts down the write direction (the backend sees EOF).
  void ShutdownWrite();
  // Closes the socket.
  void Close() { socket_.Reset(); }

  // Convenience requests with the default flags (version 1).
  void SendU64(uint32_t request, uint64_t value, uint32_t flags = kVersion,
               absl::Span<const int> fds = {});
  void SendState(uint32_t request, uint32_t index, uint32_t num,
                 uint32_t flags = kVersion);
  void SendEmpty(uint32_t request, uint32_t flags = kVersion);

 private:
  UniqueFd socket_;
};

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_SCRIPTED_FRONTEND_H_
