// File: transport_vsock/vhost_user/frontend.h
//
// Frontend: the VMM side of a vhost-user connection (what QEMU is to a
// backend), for the guest driver's virtio-user bus: it asks a backend for its
// features, shares memory with it, and hands it rings and eventfds.
//
// One call = one request; requests that have a reply (GET_*) wait for it.
// Once REPLY_ACK is negotiated (SetProtocolFeatures), every other request is
// sent with NEED_REPLY and waits for the backend's u64 acknowledgement, so a
// refused request fails at the call that made it.
//
// The backend is untrusted (a confidential guest does not trust its host):
// every reply is checked before use — same request id, flags exactly
// version 1 | REPLY, the exact payload size of its layout, no descriptors
// (any that arrive are closed), ring indices and config ranges equal to what
// was asked. A bad reply fails the call with kInvalidArgument (or
// kDataLoss/kUnavailable from the socket); the caller should drop the
// session. Nothing here CHECKs on backend input.
//
// Blocking: calls block the calling thread, each for at most |io_timeout|
// per message sent or awaited (kDeadlineExceeded). Setup is a few dozen
// short messages (QEMU does the same synchronously).
//
// Not thread-safe: one thread drives a Frontend.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_FRONTEND_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_FRONTEND_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/connection.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {

struct FrontendOptions {
  // The longest wait for room to send one message, or for one reply.
  absl::Duration io_timeout = absl::Seconds(2);
};

class Frontend {
 public:
  // Takes ownership of |socket|, a connected AF_UNIX stream socket.
  explicit Frontend(UniqueFd socket, FrontendOptions options = {});

  Frontend(const Frontend&) = delete;
  Frontend& operator=(const Frontend&) = delete;

  // The socket (owned by the Frontend), for watching hang-ups.
  int fd() const { return connection_.fd(); }
  // True once SetProtocolFeatures acked REPLY_ACK.
  bool reply_ack() const { return reply_ack_; }

  [[nodiscard]] absl::StatusOr<uint64_t> GetFeatures();
  [[nodiscard]] absl::Status SetFeatures(uint64_t features);
  [[nodiscard]] absl::StatusOr<uint64_t> GetProtocolFeatures();
  // Acks |features| (a subset of what GetProtocolFeatures returned; the
  // caller's business). REPLY_ACK takes effect from the next request.
  [[nodiscard]] absl::Status SetProtocolFeatures(uint64_t features);
  // Needs MQ; the backend's number of queues.
  [[nodiscard]] absl::StatusOr<uint64_t> GetQueueNum();
  [[nodiscard]] absl::Status SetOwner();

  // Shares |regions|, one descriptor each (borrowed; the kernel duplicates
  // them into the backend). kInvalidArgument for a count mismatch or more
  // than kMaxMemTableRegions.
  [[nodiscard]] absl::Status SetMemTable(absl::Span<const MemoryRegionDesc> regions,
                                         absl::Span<const int> fds);

  [[nodiscard]] absl::Status SetVringNum(uint32_t index, uint32_t num);
  [[nodiscard]] absl::Status SetVringBase(uint32_t index, uint32_t base);
  [[nodiscard]] absl::Status SetVringAddr(const VringAddress& address);
  // |fd| is borrowed; a negative |fd| sends the NOFD flag (the backend polls
  // for kicks / signals nothing). kInvalidArgument for index > 255.
  [[nodiscard]] absl::Status SetVringKick(uint32_t index, int fd);
  [[nodiscard]] absl::Status SetVringCall(uint32_t index, int fd);
  [[nodiscard]] absl::Status SetVringErr(uint32_t index, int fd);
  // Needs VHOST_USER_F_PROTOCOL_FEATURES acked.
  [[nodiscard]] absl::Status SetVringEnable(uint32_t index, bool enable);
  // Stops ring |index|; returns the backend's next avail index.
  [[nodiscard]] absl::StatusOr<uint16_t> GetVringBase(uint32_t index);
  // Needs CONFIG. |size| bytes of config space at |offset|; a backend that
  // refuses (an empty reply, as vhost-user.rst says) gives kUnavailable.
  [[nodiscard]] absl::StatusOr<std::vector<uint8_t>> GetConfig(uint32_t offset,
                                                               uint32_t size);

  // Call when fd() is readable outside a request: the backend sends nothing
  // unasked on this channel, so readable means it hung up (kUnavailable) or
  // misbehaved (kInvalidArgument; descriptors closed). OK if nothing was
  // there after all.
  [[nodiscard]] absl::Status CheckUnsolicited();

 private:
  // Sends one request; with |ack| (REPLY_ACK negotiated and the request has
  // no reply of its own) sets NEED_REPLY and awaits the acknowledgement.
  absl::Status Request(uint32_t request, absl::Span<const uint8_t> payload,
                       absl::Span<const int> fds = {});
  // Sends a request that has a reply and returns the reply's payload, whose
  // size must be |size| (or anything up to kMaxPayloadSize with -1).
  absl::StatusOr<std::vector<uint8_t>> Call(uint32_t request,
                                            absl::Span<const uint8_t> payload,
                                            int64_t size);
  absl::StatusOr<Message> AwaitReply(uint32_t request);
  absl::StatusOr<uint64_t> GetU64(uint32_t request);
  absl::Status SetVringFd(uint32_t request, uint32_t index, int fd);

  Connection connection_;
  FrontendOptions options_;
  bool reply_ack_ = false;
};

}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_FRONTEND_H_
