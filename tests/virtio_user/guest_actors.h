// File: tests/virtio_user/guest_actors.h
//
// Guest-side connection actors for the two-process tests, on top of
// core/transport (they run on the driver's reactor thread):
//
//   PatternReader  reads a connection to EOF checking the probe pattern;
//                  after EOF it writes |reply| pattern bytes back (from the
//                  driver's tx pool) and half-closes; may start paused
//                  (not reading: the peer runs out of credit).
//   PatternWriter  writes |bytes| pattern bytes into the tx pool under flow
//                  control, recording kCreditBlocked / kWritable and the
//                  credit snapshot when blocked; half-closes at the end.
#ifndef VRPC_TESTS_VIRTIO_USER_GUEST_ACTORS_H_
#define VRPC_TESTS_VIRTIO_USER_GUEST_ACTORS_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/buffer/slice.h"
#include "core/transport/connection.h"

namespace vrpc {
namespace virtio_user_test {

class PatternReader {
 public:
  // Takes ownership of |conn|.
  PatternReader(std::unique_ptr<transport::Connection> conn, uint64_t reply, bool paused = false);

  // Starts reading (if paused).
  void Resume();

  // Readable from any thread.
  uint64_t received() const { return received_; }
  uint64_t mismatches() const { return mismatches_; }
  bool eof() const { return eof_; }
  bool done() const { return done_; }
  absl::Duration elapsed() const { return last_ - first_; }
  transport::Connection& connection() { return *conn_; }

 private:
  void OnEvent(const transport::ConnectionEvent& e);
  void Pump();

  std::unique_ptr<transport::Connection> conn_;
  const uint64_t reply_;
  bool paused_;
  SliceChain pending_;
  uint64_t replied_ = 0;
  absl::Time first_ = absl::InfinitePast(), last_ = absl::InfinitePast();
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> mismatches_{0};
  std::atomic<bool> eof_{false};
  std::atomic<bool> done_{false};
  absl::Status closed_;
};

class PatternWriter {
 public:
  // Takes ownership of |conn| (connecting or open).
  PatternWriter(std::unique_ptr<transport::Connection> conn, uint64_t bytes);

  // Readable from any thread.
  uint64_t written() const { return written_; }
  bool blocked_seen() const { return blocked_seen_; }
  bool writable_seen() const { return writable_seen_; }
  bool finished() const { return finished_; }
  // Peer credit when kCreditBlocked arrived (the reactor thread wrote it
  // before setting blocked_seen()).
  uint32_t credit_when_blocked() const { return credit_when_blocked_; }
  transport::Connection& connection() { return *conn_; }

 private:
  void OnEvent(const transport::ConnectionEvent& e);
  void Pump();

  std::unique_ptr<transport::Connection> conn_;
  const uint64_t bytes_;
  uint64_t generated_ = 0;
  SliceChain pending_;
  std::atomic<uint64_t> written_{0};
  std::atomic<bool> blocked_seen_{false};
  std::atomic<bool> writable_seen_{false};
  std::atomic<bool> finished_{false};
  std::atomic<uint32_t> credit_when_blocked_{~0u};
};

}  // namespace virtio_user_test
}  // namespace vrpc

#endif  // VRPC_TESTS_VIRTIO_USER_GUEST_ACTORS_H_
