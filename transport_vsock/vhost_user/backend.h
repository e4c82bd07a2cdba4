// File: transport_vsock/vhost_user/backend.h
//
// Backend: the device-agnostic side of a vhost-user connection (QEMU, crosvm
// or cloud-hypervisor is the frontend). It speaks the control protocol,
// maps guest memory, collects each ring's configuration and descriptors, and
// tells a device (DeviceHooks) when a ring starts and stops. It never touches
// a ring's contents: the device does, with the MemoryTable it is given.
//
// Driving it. The backend owns no event loop. The caller accepts a frontend
// (Listener), hands the socket to Attach(), watches socket_fd() for
// readability (level-triggered) and calls HandleReadable(). When that returns
// an error the session is already torn down (rings stopped, device reset,
// memory released, descriptors closed) except for the socket itself: the
// caller removes its watch, then calls Disconnect(), and may Attach() the
// next frontend.
//
// Ring lifecycle (vhost-user.rst "Ring states"). A ring is STARTED from the
// first moment all of these hold, checked after every message that can change
// them (SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_KICK, SET_MEM_TABLE,
// ADD_MEM_REG):
//   1. SET_VRING_KICK was received since the ring last stopped (with an fd,
//      or with the NOFD flag meaning "poll");
//   2. SET_VRING_NUM set a size and SET_VRING_ADDR set the addresses;
//   3. a memory table is present, and the descriptor table (16*num bytes),
//      avail ring (6+2*num) and used ring (6+8*num) each lie inside one
//      region (translated from frontend user addresses to guest-physical).
// Then OnRingStarted runs. A ring STOPS on GET_VRING_BASE (OnRingStopped
// returns the next avail index, which is the reply), on RESET_OWNER, and when
// the session ends; stopping drops the kick and call descriptors, so a restart
// needs a new SET_VRING_KICK (as QEMU sends). ENABLED is separate: if
// VHOST_USER_F_PROTOCOL_FEATURES (bit 30) was acked by SET_FEATURES, a ring is
// disabled until SET_VRING_ENABLE(1); otherwise it is always enabled. A
// started, disabled ring must be processed without side effects.
// SET_VRING_NUM/ADDR/BASE on a started ring, SET_FEATURES changing features
// while a ring is started, and memory changes that move or unmap a started
// ring are protocol violations.
//
// Errors. Frontend input is untrusted: malformed or out-of-range messages,
// wrong descriptors, or requests in the wrong state end the session with an
// error Status (after a non-zero REPLY_ACK if one was asked for). Unknown or
// unsupported requests are answered with a non-zero REPLY_ACK when the
// frontend asked for one (the session continues) and end it otherwise.
// Nothing here CHECKs on frontend input.
//
// Threading: not thread-safe. Every method and every DeviceHooks call runs on
// the caller's thread; hooks must not call back into the Backend.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_BACKEND_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/connection.h"
#include "transport_vsock/vhost_user/memory.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {

// A descriptor shared between the backend and a device. The backend drops
// its reference when the frontend replaces the descriptor, when the ring
// stops and when the session ends; the descriptor is closed when the last
// reference goes, so a device may keep using it (e.g. from another thread)
// for as long as it holds the pointer. Never null inside a non-null
// SharedFd: a missing descriptor is a null SharedFd.
using SharedFd = std::shared_ptr<const UniqueFd>;

// Everything a device needs to run one ring. Addresses are guest-physical:
// the backend translated the frontend's user addresses through the memory
// table; the device translates them to host pointers with that table (or a
// GuestMemory built from it) and must check lengths itself.
struct RingConfig {
  uint32_t index = 0;
  uint32_t num = 0;   // ring size: a power of two in 1..32768
  uint16_t base = 0;  // next avail index to process (SET_VRING_BASE)
  uint64_t desc_guest_addr = 0;
  uint64_t avail_guest_addr = 0;
  uint64_t used_guest_addr = 0;
  // The addresses as the frontend sent them (its virtual addresses).
  uint64_t desc_user_addr = 0;
  uint64_t avail_user_addr = 0;
  uint64_t used_user_addr = 0;
  SharedFd kick;  // eventfd the frontend writes; null: poll the ring (NOFD)
  SharedFd call;  // eventfd to signal used buffers; null: none (polling)
  SharedFd err;   // eventfd to signal errors; null: none
  bool enabled = false;    // see "ENABLED" above
  bool event_idx = false;  // VIRTIO_F_EVENT_IDX (bit 29) was acked
};

// The device side. All calls come from the Backend's thread, synchronously.
// Implementations must outlive the Backend they are given to.
class DeviceHooks {
 public:
  virtual ~DeviceHooks() = default;

  // Virtio feature bits the device offers (VERSION_1, EVENT_IDX, device
  // bits). The backend adds VHOST_USER_F_PROTOCOL_FEATURES (bit 30) itself.
  // Must not change while a Backend uses the device.
  virtual uint64_t Features() const = 0;

  // Number of virtqueues, 1..kMaxQueues; the bound every ring index is
  // checked against. Must not change while a Backend uses the device.
  virtual uint32_t NumQueues() const = 0;

  // Called on SET_FEATURES with the acked set, already checked to be a
  // subset of Features() | bit 30. An error refuses the features (the
  // session ends).
  virtual absl::Status OnFeaturesAcked(uint64_t features) {
    return absl::OkStatus();
  }

  // Size of the device config space in bytes. GET_CONFIG/SET_CONFIG outside
  // [0, ConfigSize()) are refused before the device is asked.
  virtual uint32_t ConfigSize() const { return 0; }

  // Returns exactly |size| bytes of config space at |offset|; the range lies
  // inside ConfigSize(). An error (or a wrong length) is reported to the
  // frontend as an empty GET_CONFIG reply.
  virtual absl::StatusOr<std::vector<uint8_t>> ReadConfig(uint32_t offset,
                                                          uint32_t size) {
    return absl::UnimplementedError("device has no config space");
  }

  // Writes |bytes| at |offset| (range inside ConfigSize()); |flags| as in
  // SET_CONFIG (bit 0: live migration). An error refuses the write (non-zero
  // REPLY_ACK if asked for; the session continues). Default: refuse.
  virtual absl::Status WriteConfig(uint32_t offset,
                                   absl::Span<const uint8_t> bytes,
                                   uint32_t flags) {
    return absl::PermissionDeniedError("device config space is read-only");
  }

  // The memory table changed (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG).
  // Started rings stay where they were (the backend checked). The device
  // should switch to |table| and drop its reference to the old one.
  virtual void OnMemoryTableChanged(std::shared_ptr<const MemoryTable> table) {}

  // Ring |ring.index| started (rule in the file comment). |memory| holds the
  // ring and the buffers it will point to; keep it as long as guest memory
  // is accessed for this ring.
  virtual void OnRingStarted(const RingConfig& ring,
                             std::shared_ptr<const MemoryTable> memory) = 0;

  // A started ring's enabled flag, kick, call or err descriptor changed;
  // |ring| is the complete new configuration (addresses, num and base do not
  // change while started).
  virtual void OnRingUpdated(const RingConfig& ring) {}

  // Stop processing ring |index| (it was started). Returns the index of the
  // next avail entry the device would have processed (last_avail_idx), which
  // GET_VRING_BASE reports to the frontend. After this returns the device
  // must not touch the ring until it is started again.
  virtual uint16_t OnRingStopped(uint32_t index) = 0;

  // The session ended (frontend disconnect, protocol violation,
  // Disconnect()). All started rings were stopped first. The device returns
  // to its initial state and should drop its MemoryTable and SharedFd
  // references.
  virtual void OnReset() {}
};

struct BackendOptions {
  // How long to wait for the rest of a started message, or for room to
  // write a reply (zero: never wait).
  absl::Duration io_timeout = absl::Seconds(2);
  // Most messages handled per HandleReadable() call (a budget, so a chatty
  // frontend cannot starve the caller's other work).
  int max_messages_per_call = 16;
  // Offer VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS (GET_MAX_MEM_SLOTS,
  // ADD_MEM_REG, REM_MEM_REG). QEMU then uses ADD_MEM_REG instead of
  // SET_MEM_TABLE.
  bool offer_configure_mem_slots = true;
  // Reported by GET_MAX_MEM_SLOTS; the most regions a table may hold (a
  // SET_MEM_TABLE is capped at 8 regardless).
  uint32_t max_mem_slots = 32;
  // The most guest memory one session may map.
  uint64_t max_memory_bytes = uint64_t{1} << 40;
};

struct BackendStats {
  uint64_t sessions = 0;   // frontends attached
  uint64_t messages = 0;   // requests received
  uint64_t replies = 0;    // replies sent (REPLY_ACK included)
  uint64_t refused = 0;    // unknown/unsupported requests, refused config writes
  uint64_t violations = 0; // sessions ended by a protocol violation
};

class Backend {
 public:
  // Protocol features the backend offers: MQ | REPLY_ACK | CONFIG (0x209),
  // plus CONFIGURE_MEM_SLOTS when the option is set.
  static uint64_t OfferedProtocolFeatures(const BackendOptions& options);

  // Does not take ownership of |device|, which must outlive the Backend.
  // CHECKs that device->NumQueues() is in 1..kMaxQueues (a device bug).
  explicit Backend(DeviceHooks* device, BackendOptions options = {});
  // Ends the session like Disconnect().
  ~Backend();

  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // Starts a session on |socket|, a connected AF_UNIX stream socket (taken
  // over; closed on failure). kFailedPrecondition if a frontend is attached
  // (including one whose session ended but was not Disconnect()ed).
  [[nodiscard]] absl::Status Attach(UniqueFd socket);

  // True between Attach() and Disconnect().
  bool attached() const { return connection_ != nullptr; }
  // The attached socket (owned by the Backend) or -1.
  int socket_fd() const;

  // Handles the messages available on the socket, up to
  // max_messages_per_call; returns OK at once when nothing is readable.
  // Errors end the session (see the file comment): kUnavailable when the
  // frontend closed the connection, other codes for violations and I/O
  // errors. kFailedPrecondition when not attached or the session already
  // ended.
  [[nodiscard]] absl::Status HandleReadable();

  // Ends the session (stopping rings and resetting the device if that did
  // not happen yet) and closes the socket. Idempotent.
  void Disconnect();

  const BackendStats& stats() const { return stats_; }

  // Introspection (tests, debugging).
  bool ring_started(uint32_t index) const;
  bool ring_enabled(uint32_t index) const;
  uint64_t acked_features() const { return acked_features_; }
  uint64_t acked_protocol_features() const { return acked_protocol_features_; }
  // The current memory table, or null.
  std::shared_ptr<const MemoryTable> memory() const { return memory_; }

 private:
  // Per-ring state collected from the frontend.
  struct Ring {
    bool num_set = false;
    bool addr_set = false;
    bool kicked = false;       // SET_VRING_KICK since the last stop
    bool enable_flag = false;  // last SET_VRING_ENABLE
    bool started = false;
    uint32_t num = 0;
    uint16_t base = 0;
    VringAddress addr;
    // Guest-physical ring addresses, valid while started.
    uint64_t desc_gpa = 0;
    uint64_t avail_gpa = 0;
    uint64_t used_gpa = 0;
    SharedFd kick;
    SharedFd call;
    SharedFd err;
  };

  uint64_t OfferedFeatures() const;
  bool ProtocolNegotiated() const;
  bool Supported(uint32_t request) const;

  absl::Status Fail(absl::Status status);
  void EndSession();
  absl::Status Dispatch(Message& msg);
  absl::StatusOr<uint64_t> Handle(Message& msg);

  // Handlers: the value is the REPLY_ACK payload (0 = success); errors are
  // violations.
  absl::StatusOr<uint64_t> HandleGetU64(const Message& msg, uint64_t value);
  absl::StatusOr<uint64_t> HandleSetFeatures(const Message& msg);
  absl::StatusOr<uint64_t> HandleSetProtocolFeatures(const Message& msg);
  absl::StatusOr<uint64_t> HandleResetOwner();
  absl::StatusOr<uint64_t> HandleSetMemTable(Message& msg);
  absl::StatusOr<uint64_t> HandleAddMemReg(Message& msg);
  absl::StatusOr<uint64_t> HandleRemMemReg(const Message& msg);
  absl::StatusOr<uint64_t> HandleSetVringNum(const Message& msg);
  absl::StatusOr<uint64_t> HandleSetVringAddr(const Message& msg);
  absl::StatusOr<uint64_t> HandleSetVringBase(const Message& msg);
  absl::StatusOr<uint64_t> HandleGetVringBase(const Message& msg);
  absl::StatusOr<uint64_t> HandleSetVringFd(Message& msg);
  absl::StatusOr<uint64_t> HandleSetVringEnable(const Message& msg);
  absl::StatusOr<uint64_t> HandleGetConfig(const Message& msg);
  absl::StatusOr<uint64_t> HandleSetConfig(const Message& msg);

  // Ring helpers.
  absl::StatusOr<VringState> ParseStateFor(const Message& msg) const;
  absl::Status CheckNotStarted(uint32_t index, uint32_t request) const;
  absl::Status TranslateRing(const Ring& ring, const MemoryTable& table,
                             uint64_t* desc, uint64_t* avail,
                             uint64_t* used) const;
  absl::Status TryStartRing(uint32_t index);
  absl::Status TryStartAllRings();
  uint16_t StopRing(uint32_t index);
  RingConfig MakeRingConfig(uint32_t index) const;
  void NotifyRingUpdated(uint32_t index);
  absl::Status InstallMemoryTable(std::shared_ptr<const MemoryTable> table);

  absl::Status SendReply(uint32_t request, absl::Span<const uint8_t> payload);

  DeviceHooks* const device_;
  const BackendOptions options_;
  const uint32_t num_queues_;

  std::unique_ptr<Connection> connection_;
  bool session_ended_ = false;

  uint64_t acked_features_ = 0;
  bool features_set_ = false;
  uint64_t acked_protocol_features_ = 0;
  std::shared_ptr<const MemoryTable> memory_;
  std::vector<Ring> rings_;

  BackendStats stats_;
};

}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_BACKEND_H_
