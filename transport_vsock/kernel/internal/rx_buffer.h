// File: transport_vsock/kernel/internal/rx_buffer.h
//
// RxBuffer: the bounded receive side of a kernel socket connection. recv(2)
// writes into the free tail of a heap chunk; each received run becomes a
// Slice of that chunk (the kernel's copy is the only one), queued until the
// application takes it. The chunk's bytes already handed out are never
// written again.
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

  // Takes up to |max| queued bytes.
  SliceChain Take(size_t max);
  // Drops the first |n| queued bytes. Precondition (CHECKed): n <= size().
  void Drop(size_t n) { queued_.RemovePrefix(n); }
  // Drops everything, including our hold on the current chunk.
  void Clear();

 private:
  const size_t limit_;
  const size_t chunk_size_;
  Slice chunk_;              // keeps the current chunk alive
  uint8_t* chunk_data_ = nullptr;
  size_t chunk_used_ = 0;    // bytes of the chunk handed out
  SliceChain queued_;
};

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_KERNEL_INTERNAL_RX_BUFFER_H_
