#include "transport_vsock/kernel/internal/rx_buffer.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

void RxBuffer::EnsureRoom(size_t at_least) {
  if (chunk_data_ != nullptr && room() >= at_least) return;
  chunk_capacity_ = std::max(chunk_size_, at_least);
  chunk_ = Slice::Allocate(chunk_capacity_, &chunk_data_);
  chunk_used_ = 0;
}

ssize_t RxBuffer::RecvOnce(int fd) {
  VRPC_CHECK(!full());
  EnsureRoom(std::min(kMinRoom, chunk_size_));
  const size_t want = std::min(room(), limit_ - queued_.size());
  const ssize_t n = ::recv(fd, chunk_data_ + chunk_used_, want, MSG_DONTWAIT);
  if (n > 0) {
    queued_.Append(chunk_.Sub(chunk_used_, static_cast<size_t>(n)));
    chunk_used_ += static_cast<size_t>(n);
  }
  return n;
}

RxBuffer::RecordResult RxBuffer::RecvRecord(int fd, size_t max_record) {
  VRPC_CHECK(!full() && max_record > 0);
  RecordResult r;
  size_t need = max_record;
  if (peek_ != Peek::kUnsupported) {
    const ssize_t len = ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (len >= 0) {
      peek_ = Peek::kWorks;
      if (static_cast<size_t>(len) > kMaxRecordBytes) {
        r.truncated = true;
        r.record_len = static_cast<size_t>(len);
        return r;
      }
      // Only ever enlarges the room: a kernel's peek may report less than
      // the whole record (e.g. the fragments received so far).
      need = std::max<size_t>(static_cast<size_t>(len), max_record);
    } else if (errno == EOPNOTSUPP || errno == EINVAL) {
      peek_ = Peek::kUnsupported;
    } else {
      r.n = -1;  // EAGAIN or an error, errno as recv left it
      return r;
    }
  }
  EnsureRoom(need);
  iovec iov{chunk_data_ + chunk_used_, room()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // MSG_TRUNC: the return value is the record's full length, even when
  // longer than the room.
  const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0) {
    r.n = -1;
    return r;
  }
  if (static_cast<size_t>(n) > iov.iov_len || (msg.msg_flags & MSG_TRUNC) != 0) {
    r.truncated = true;
    r.record_len = static_cast<size_t>(n);
    return r;
  }
  if (n > 0) {
    queued_.Append(chunk_.Sub(chunk_used_, static_cast<size_t>(n)));
    chunk_used_ += static_cast<size_t>(n);
  }
  r.n = n;
  return r;
}

SliceChain RxBuffer::Take(size_t max) { return queued_.TakePrefix(std::min(max, queued_.size())); }

void RxBuffer::Clear() {
  queued_.Clear();
  chunk_ = Slice();
  chunk_data_ = nullptr;
  chunk_capacity_ = 0;
  chunk_used_ = 0;
}

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
