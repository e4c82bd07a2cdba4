#include "transport_vsock/protocol/rx_queue.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vrpc {
namespace vsock {
namespace {

// Size of the owned chunks small payloads are copied into.
constexpr size_t kSmallChunkSize = 4096;

}  // namespace

void RxQueue::Push(SliceChain payload, bool end_of_message, bool end_of_record) {
  for (const Slice& s : payload.slices()) PushSlice(s);
  payload.Clear();  // release what was copied
  if (end_of_message && open_message_) {
    chunks_.back().eom = true;
    chunks_.back().eor = end_of_record;
    open_message_ = false;
    ++complete_messages_;
  }
}

void RxQueue::PushSlice(Slice slice) {
  bytes_ += slice.size();
  open_message_ = true;
  if (slice.size() < copy_below_) {
    AppendSmall(slice);
    return;
  }
  chunks_.push_back(Chunk{std::move(slice)});
}

void RxQueue::AppendSmall(const Slice& slice) {
  if (small_data_ == nullptr || kSmallChunkSize - small_used_ < slice.size()) {
    small_backing_ = Slice::Allocate(kSmallChunkSize, &small_data_);
    small_used_ = 0;
  }
  std::memcpy(small_data_ + small_used_, slice.data(), slice.size());
  copied_bytes_ += slice.size();
  Slice copy = small_backing_.Sub(small_used_, slice.size());
  small_used_ += slice.size();
  // Grow the previous chunk when it ends exactly where this copy begins and
  // no message boundary lies between them.
  if (!chunks_.empty()) {
    Chunk& last = chunks_.back();
    if (!last.eom && last.data.SharesBackingWith(small_backing_) &&
        last.data.data() + last.data.size() == copy.data()) {
      const size_t offset = static_cast<size_t>(last.data.data() - small_backing_.data());
      last.data = small_backing_.Sub(offset, last.data.size() + copy.size());
      return;
    }
  }
  chunks_.push_back(Chunk{std::move(copy)});
}

SliceChain RxQueue::Read(size_t max) {
  SliceChain out;
  while (!chunks_.empty() && out.size() < max) {
    Chunk& head = chunks_.front();
    const size_t want = max - out.size();
    if (head.data.size() <= want) {
      out.Append(std::move(head.data));
      chunks_.pop_front();
    } else {
      out.Append(head.data.Sub(0, want));
      head.data = head.data.Sub(want, head.data.size() - want);
    }
  }
  bytes_ -= out.size();
  if (chunks_.empty()) open_message_ = false;
  return out;
}

std::optional<Message> RxQueue::ReadMessage() {
  if (complete_messages_ == 0) return std::nullopt;
  Message msg;
  while (true) {
    Chunk head = std::move(chunks_.front());
    chunks_.pop_front();
    bytes_ -= head.data.size();
    msg.data.Append(std::move(head.data));
    if (head.eom) {
      msg.end_of_record = head.eor;
      break;
    }
  }
  --complete_messages_;
  return msg;
}

void RxQueue::Clear() {
  chunks_.clear();
  bytes_ = 0;
  complete_messages_ = 0;
  open_message_ = false;
  small_backing_ = Slice();
  small_data_ = nullptr;
  small_used_ = 0;
}

}  // namespace vsock
}  // namespace vrpc
