// File: core/buffer/message_queue.h
//
// MessageQueue: a FIFO of SliceChains (messages waiting for a reader or a
// window). Holding one message, the unary case, it does not allocate;
// std::deque allocates even when empty. Push and pop are amortized O(1):
// popped slots are reclaimed when the queue drains or is half consumed.
// Not thread-safe.
#ifndef VRPC_CORE_BUFFER_MESSAGE_QUEUE_H_
#define VRPC_CORE_BUFFER_MESSAGE_QUEUE_H_

#include <cstddef>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "core/buffer/slice.h"

namespace vrpc {

class MessageQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }

  void push_back(SliceChain message) { items_.push_back(std::move(message)); }
  // The oldest message; the queue must not be empty.
  SliceChain pop_front() {
    SliceChain message = std::move(items_[head_++]);
    if (head_ == items_.size()) {
      clear();
    } else if (head_ > 16 && head_ * 2 > items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    return message;
  }
  void clear() {
    items_.clear();
    head_ = 0;
  }

 private:
  absl::InlinedVector<SliceChain, 1> items_;
  size_t head_ = 0;  // items_[0, head_) were popped
};

}  // namespace vrpc

#endif  // VRPC_CORE_BUFFER_MESSAGE_QUEUE_H_
