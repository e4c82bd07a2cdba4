// File: transport_vsock/kernel/internal/rx_buffer.h
//
// RxBuffer: the bounded receive side of a kernel socket connection. recv(2)
// writes into the free tail of a heap chunk; each received run becomes a
// Slice of that chunk (the kernel's copy is the only one), queued until the
// application takes it. The chunk's bytes already handed out are never
// written again.
//
// SOCK_SEQPACKET sockets are read a record at a time (RecvRecord): a record
// is never split across chunks, and one longer than the room given is
// reported, never silently cut.
#ifndef VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_RX_BUFFER_H_
#define VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_RX_BUFFER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "core/buffer/slice.h"

namespace vrpc {
namespace kernel {
namespace internal {

class RxBuffer {
 public:
  // Holds at most |limit| queued bytes; reads into chunks of |chunk| bytes.
  // Both must be > 0 (CHECKed).
  RxBuffer(size_t limit, size_t chunk);
  RxBuffer(const RxBuffer&) = delete;
  RxBuffer& operator=(const RxBuffer&) = delete;

  size_t size() const { return queued_.size(); }
  bool empty() const { return queued_.empty(); }
  bool full() const { return queued_.size() >= limit_; }
  const SliceChain& queued() const { return queued_; }

  // One recv(2) from |fd| (non-blocking) of up to the room left. Returns
  // its result: > 0 bytes queued, 0 at EOF, -1 with errno set. Precondition
  // (CHECKed): !full().
  ssize_t RecvOnce(int fd);

  // Records longer than this are refused even when the kernel can say their
  // length (a hostile peer's 4 GiB record is not allocated).
  static constexpr size_t kMaxRecordBytes = 16 << 20;

  struct RecordResult {
    // > 0: one record of that many bytes queued; 0: end of stream or an
    // empty record (recv(2) cannot tell them apart); -1: errno set (EAGAIN
    // when nothing is queued in the socket).
    ssize_t n = 0;
    // The record did not fit the room given: nothing was queued and
    // |record_len| is its length (the kernel has discarded it, unless it
    // exceeded kMaxRecordBytes and was left unread). The byte stream is
    // broken.
    bool truncated = false;
    size_t record_len = 0;
  };
  // One record from the non-blocking SOCK_SEQPACKET socket |fd|, queued
  // whole. The room is at least |max_record| bytes, which should be >= the
  // longest record the peer can send (AF_VSOCK: our buffer size), and at
  // least the length MSG_PEEK|MSG_TRUNC reports, where the kernel answers
  // it (AF_UNIX; EOPNOTSUPP is remembered). The peek only enlarges the
  // room: Debian's 6.1 vsock answers with less than a multi-packet
  // record's length. The queue may exceed the limit by up to one record.
  // Precondition (CHECKed): !full(), max_record > 0.
  RecordResult RecvRecord(int fd, size_t max_record);
  // Never peeks: the path taken where the kernel cannot peek a record's
  // length (tests exercise it over AF_UNIX).
  void DisableRecordPeek() { peek_ = Peek::kUnsupported; }

  // Takes up to |max| queued bytes.
  SliceChain Take(size_t max);
  // Drops the first |n| queued bytes. Precondition (CHECKed): n <= size().
  void Drop(size_t n) { queued_.RemovePrefix(n); }
  // Drops everything, including our hold on the current chunk.
  void Clear();

 private:
  enum class Peek { kUnknown, kWorks, kUnsupported };

  // A fresh chunk of max(chunk_size_, at_least) bytes when the current one
  // has less than |at_least| bytes of room (and less than kMinRoom).
  void EnsureRoom(size_t at_least);
  size_t room() const { return chunk_data_ == nullptr ? 0 : chunk_capacity_ - chunk_used_; }

  const size_t limit_;
  const size_t chunk_size_;
  Slice chunk_;              // keeps the current chunk alive
  uint8_t* chunk_data_ = nullptr;
  size_t chunk_capacity_ = 0;
  size_t chunk_used_ = 0;    // bytes of the chunk handed out
  Peek peek_ = Peek::kUnknown;
  SliceChain queued_;
};

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_RX_BUFFER_H_
