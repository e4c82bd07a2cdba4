#include "transport_vsock/kernel/internal/rx_buffer.h"

#include <sys/socket.h>

#include <algorithm>

#include "core/base/logging.h"

namespace vrpc {
namespace kernel {
namespace internal {
namespace {

// A chunk with less room than this is retired rather than used for a
// small recv.
constexpr size_t kMinRoom = 2048;

}  // namespace

RxBuffer::RxBuffer(size_t limit, size_t chunk) : limit_(limit), chunk_size_(chunk) {
  VRPC_CHECK(limit > 0 && chunk > 0);
}

ssize_t RxBuffer::RecvOnce(int fd) {
  VRPC_CHECK(!full());
  const size_t room = chunk_data_ == nullptr ? 0 : chunk_size_ - chunk_used_;
  if (room < std::min(kMinRoom, chunk_size_)) {
    chunk_ = Slice::Allocate(chunk_size_, &chunk_data_);
    chunk_used_ = 0;
  }
  const size_t want = std::min(chunk_size_ - chunk_used_, limit_ - queued_.size());
  const ssize_t n = ::recv(fd, chunk_data_ + chunk_used_, want, MSG_DONTWAIT);
  if (n > 0) {
    queued_.Append(chunk_.Sub(chunk_used_, static_cast<size_t>(n)));
    chunk_used_ += static_cast<size_t>(n);
  }
  return n;
}

SliceChain RxBuffer::Take(size_t max) { return queued_.TakePrefix(std::min(max, queued_.size())); }

void RxBuffer::Clear() {
  queued_.Clear();
  chunk_ = Slice();
  chunk_data_ = nullptr;
  chunk_used_ = 0;
}

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
