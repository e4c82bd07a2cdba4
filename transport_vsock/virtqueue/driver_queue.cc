#include "transport_vsock/virtqueue/driver_queue.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"
#include "transport_vsock/virtqueue/internal/ring_parts.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace virtqueue {

absl::StatusOr<std::unique_ptr<DriverQueue>> DriverQueue::Create(
    GuestMemory memory, const DriverQueueConfig& config,
    std::shared_ptr<BrokenLatch> latch) {
  if (latch == nullptr) latch = std::make_shared<BrokenLatch>();
  if (latch->IsBroken()) return latch->BrokenError();
  VRPC_ASSIGN_OR_RETURN(
      const internal::RingParts parts,
      internal::TranslateRingParts(memory, config.size, config.desc_addr,
                                   config.avail_addr, config.used_addr, config.event_idx));
  // The driver initializes its own ring.
  const uint64_t desc_bytes = DescTableBytes(config.size);
  const uint64_t avail_bytes = AvailRingBytes(config.size, config.event_idx);
  const uint64_t used_bytes = UsedRingBytes(config.size, config.event_idx);
  memory.ObserveWrite(config.desc_addr, desc_bytes);
  memory.ObserveWrite(config.avail_addr, avail_bytes);
  memory.ObserveWrite(config.used_addr, used_bytes);
  std::memset(parts.desc, 0, desc_bytes);
  std::memset(parts.avail, 0, avail_bytes);
  std::memset(parts.used, 0, used_bytes);
  FullFence();
  return std::unique_ptr<DriverQueue>(new DriverQueue(
      std::move(memory), config, std::move(latch), parts.desc, parts.avail, parts.used));
}

DriverQueue::DriverQueue(GuestMemory memory, const DriverQueueConfig& config,
                         std::shared_ptr<BrokenLatch> latch, uint8_t* desc,
                         uint8_t* avail, uint8_t* used)
    : memory_(std::move(memory)),
      config_(config),
      latch_(std::move(latch)),
      mask_(static_cast<uint16_t>(config.size - 1)),
      desc_(desc),
      avail_(avail),
      used_(used),
      next_free_(config.size),
      num_free_(config.size),
      heads_(config.size),
      avail_shadow_(config.size, 0) {
  // Free list 0 -> 1 -> ... -> size - 1; the last link is never followed.
  for (uint32_t i = 0; i < config.size; ++i) {
    next_free_[i] = static_cast<uint16_t>(i + 1);
  }
}

absl::Status DriverQueue::Violation(absl::Status why) {
  latch_->Latch(why);
  return why;
}

absl::Status DriverQueue::CheckBuffers(absl::Span<const DriverBuffer> readable,
                                       absl::Span<const DriverBuffer> writable,
                                       uint32_t* writable_bytes) const {
  if (readable.empty() && writable.empty()) {
    return absl::InvalidArgumentError("a chain needs at least one buffer");
  }
  uint64_t totals[2] = {0, 0};  // readable, writable
  const absl::Span<const DriverBuffer> parts[2] = {readable, writable};
  for (int p = 0; p < 2; ++p) {
    for (const DriverBuffer& b : parts[p]) {
      if (b.len == 0) return absl::InvalidArgumentError("zero-length buffer");
      if (!memory_.IsMapped(b.addr, b.len)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "buffer [0x%x, +0x%x) is not in the queue's memory", b.addr, b.len));
      }
      totals[p] += b.len;
    }
  }
  const uint64_t total = totals[0] + totals[1];
  if (total > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("chain longer than 2^32 - 1 bytes");
  }
  *writable_bytes = static_cast<uint32_t>(totals[1]);
  return absl::OkStatus();
}

void DriverQueue::WriteDesc(uint16_t index, const DriverBuffer& b, uint16_t flags,
                            uint16_t next) {
  const uint64_t offset = uint64_t{index} * kDescSize;
  memory_.ObserveWrite(config_.desc_addr + offset, kDescSize);
  WriteDescriptor(desc_ + offset, Descriptor{b.addr, b.len, flags, next});
}

absl::StatusOr<uint16_t> DriverQueue::Add(absl::Span<const DriverBuffer> readable,
                                          absl::Span<const DriverBuffer> writable,
                                          uint64_t token) {
  if (latch_->IsBroken()) return latch_->BrokenError();
  uint32_t writable_bytes = 0;
  VRPC_RETURN_IF_ERROR(CheckBuffers(readable, writable, &writable_bytes));
  const size_t n = readable.size() + writable.size();
  if (n > num_free_) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "chain of %u buffers, %u descriptors free", n, num_free_));
  }
  const uint16_t head = free_head_;
  uint16_t index = head;
  for (size_t i = 0; i < n; ++i) {
    const bool is_writable = i >= readable.size();
    const DriverBuffer& b = is_writable ? writable[i - readable.size()] : readable[i];
    const bool last = i + 1 == n;
    const uint16_t flags = static_cast<uint16_t>((is_writable ? kDescFlagWrite : 0) |
                                                 (last ? 0 : kDescFlagNext));
    // next_free_[index] is both the free-list link and, from now on, the
    // private copy of this descriptor's chain link.
    WriteDesc(index, b, flags, last ? 0 : next_free_[index]);
    if (!last) index = next_free_[index];
  }
  free_head_ = next_free_[index];
  num_free_ -= static_cast<uint32_t>(n);
  heads_[head] = HeadInfo{HeadState::kAdded, static_cast<uint16_t>(n), writable_bytes, token};
  ++outstanding_;

  const uint16_t slot = avail_idx_ & mask_;
  avail_shadow_[slot] = head;
  const uint64_t offset = kAvailRingOffset + 2 * uint64_t{slot};
  memory_.ObserveWrite(config_.avail_addr + offset, 2);
  RelaxedStore16(avail_ + offset, head);
  ++avail_idx_;
  return head;
}

absl::StatusOr<bool> DriverQueue::PublishAvail() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  const uint16_t old_idx = published_avail_;
  if (old_idx == avail_idx_) return false;
  for (uint16_t i = old_idx; i != avail_idx_; ++i) {
    heads_[avail_shadow_[i & mask_]].state = HeadState::kPublished;
  }
  memory_.ObserveWrite(config_.avail_addr + kAvailIdxOffset, 2);
  StoreRelease16(avail_ + kAvailIdxOffset, avail_idx_);
  published_avail_ = avail_idx_;
  // Our avail.idx store must be visible before we read the device's event.
  FullFence();
  if (config_.event_idx) {
    const uint64_t offset = AvailEventOffset(config_.size);
    memory_.ObserveRead(config_.used_addr + offset, 2);
    return NeedEvent(RelaxedLoad16(used_ + offset), avail_idx_, old_idx);
  }
  memory_.ObserveRead(config_.used_addr + kUsedFlagsOffset, 2);
  return (RelaxedLoad16(used_ + kUsedFlagsOffset) & kUsedFlagNoNotify) == 0;
}

absl::StatusOr<uint16_t> DriverQueue::LoadUsedIdx() {
  memory_.ObserveRead(config_.used_addr + kUsedIdxOffset, 2);
  const uint16_t idx = AcquireLoad16(used_ + kUsedIdxOffset);
  const uint16_t pending = static_cast<uint16_t>(idx - last_used_);
  const uint16_t published = static_cast<uint16_t>(published_avail_ - last_used_);
  if (pending > published) {
    return Violation(absl::InvalidArgumentError(absl::StrFormat(
        "used idx %u claims %u completions; only %u chains are published", idx, pending,
        published)));
  }
  shadow_used_ = idx;
  return idx;
}

void DriverQueue::FreeChain(uint16_t head, uint16_t count) {
  uint16_t last = head;
  for (uint16_t i = 1; i < count; ++i) last = next_free_[last];
  next_free_[last] = free_head_;
  free_head_ = head;
  num_free_ += count;
}

absl::StatusOr<std::optional<UsedBuffer>> DriverQueue::PopUsed() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (shadow_used_ == last_used_) {
    VRPC_ASSIGN_OR_RETURN(const uint16_t idx, LoadUsedIdx());
    if (idx == last_used_) return std::nullopt;
  }
  const uint64_t offset = kUsedRingOffset + kUsedElemSize * static_cast<uint64_t>(last_used_ & mask_);
  memory_.ObserveRead(config_.used_addr + offset, kUsedElemSize);
  const uint32_t id = RelaxedLoad32(used_ + offset);
  const uint32_t len = RelaxedLoad32(used_ + offset + 4);
  if (id >= config_.size) {
    return Violation(absl::InvalidArgumentError(
        absl::StrFormat("used id %u >= queue size %u", id, config_.size)));
  }
  HeadInfo& info = heads_[id];
  if (info.state != HeadState::kPublished) {
    return Violation(absl::InvalidArgumentError(absl::StrFormat(
        "used id %u is not the head of an outstanding published chain", id)));
  }
  if (len > info.writable_bytes) {
    return Violation(absl::InvalidArgumentError(absl::StrFormat(
        "used len %u for chain %u exceeds its %u writable bytes", len, id,
        info.writable_bytes)));
  }
  const UsedBuffer result{static_cast<uint16_t>(id), len, info.token};
  FreeChain(result.head, info.descriptors);
  info = HeadInfo{};
  --outstanding_;
  ++last_used_;
  return std::optional<UsedBuffer>(result);
}

absl::StatusOr<bool> DriverQueue::EnableInterrupts() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (config_.event_idx) {
    const uint64_t offset = UsedEventOffset(config_.size);
    memory_.ObserveWrite(config_.avail_addr + offset, 2);
    RelaxedStore16(avail_ + offset, last_used_);
  } else {
    avail_flags_ &= static_cast<uint16_t>(~kAvailFlagNoInterrupt);
    memory_.ObserveWrite(config_.avail_addr + kAvailFlagsOffset, 2);
    RelaxedStore16(avail_ + kAvailFlagsOffset, avail_flags_);
  }
  // The re-arm must be visible before we look for completions that raced it.
  FullFence();
  VRPC_ASSIGN_OR_RETURN(const uint16_t idx, LoadUsedIdx());
  return idx != last_used_;
}

absl::Status DriverQueue::DisableInterrupts() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (!config_.event_idx) {
    avail_flags_ |= kAvailFlagNoInterrupt;
    memory_.ObserveWrite(config_.avail_addr + kAvailFlagsOffset, 2);
    RelaxedStore16(avail_ + kAvailFlagsOffset, avail_flags_);
  }
  return absl::OkStatus();
}

}  // namespace virtqueue
}  // namespace vrpc
