#include "transport_vsock/virtqueue/device_queue.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"
#include "transport_vsock/virtqueue/internal/ring_parts.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace virtqueue {
namespace {

absl::Status ValidateIndices(const DeviceQueueConfig& c) {
  if (c.next_avail > 0xffff) {
    return absl::InvalidArgumentError(
        absl::StrFormat("next avail index %u does not fit 16 bits", c.next_avail));
  }
  if (c.next_used.has_value() && *c.next_used > 0xffff) {
    return absl::InvalidArgumentError(
        absl::StrFormat("next used index %u does not fit 16 bits", *c.next_used));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceQueue>> DeviceQueue::Create(
    GuestMemory memory, const DeviceQueueConfig& config,
    std::shared_ptr<BrokenLatch> latch) {
  if (latch == nullptr) latch = std::make_shared<BrokenLatch>();
  if (latch->IsBroken()) return latch->BrokenError();
  VRPC_RETURN_IF_ERROR(ValidateIndices(config));
  VRPC_ASSIGN_OR_RETURN(
      const internal::RingParts parts,
      internal::TranslateRingParts(memory, config.size, config.desc_addr,
                                   config.avail_addr, config.used_addr, config.event_idx));
  uint8_t* const used = parts.used;
  uint16_t initial_used;
  if (config.next_used.has_value()) {
    initial_used = static_cast<uint16_t>(*config.next_used);
  } else {
    memory.ObserveRead(config.used_addr + kUsedIdxOffset, 2);
    initial_used = RelaxedLoad16(used + kUsedIdxOffset);
  }
  return std::unique_ptr<DeviceQueue>(new DeviceQueue(
      std::move(memory), config, std::move(latch), parts.desc, parts.avail, parts.used,
      initial_used));
}

DeviceQueue::DeviceQueue(GuestMemory memory, const DeviceQueueConfig& config,
                         std::shared_ptr<BrokenLatch> latch, uint8_t* desc,
                         uint8_t* avail, uint8_t* used, uint16_t initial_used)
    : memory_(std::move(memory)),
      config_(config),
      latch_(std::move(latch)),
      mask_(static_cast<uint16_t>(config.size - 1)),
      desc_(desc),
      avail_(avail),
      used_(used),
      initial_used_(initial_used),
      walker_(config.size, config.indirect_desc),
      in_flight_(config.size, false),
      in_flight_writable_(config.size, 0) {
  ResetState();
}

void DeviceQueue::Reset() {
  latch_->Clear();
  ResetState();
}

void DeviceQueue::ResetState() {
  last_avail_ = static_cast<uint16_t>(config_.next_avail);
  shadow_avail_ = last_avail_;
  used_idx_ = initial_used_;
  signalled_used_ = used_idx_;
  used_flags_ = 0;
  std::fill(in_flight_.begin(), in_flight_.end(), false);
  std::fill(in_flight_writable_.begin(), in_flight_writable_.end(), 0);
  in_flight_count_ = 0;
}

DeviceQueueStats DeviceQueue::stats() const {
  DeviceQueueStats s = stats_;
  s.descriptors_read = walker_.descriptors_read();
  return s;
}

absl::Status DeviceQueue::Violation(absl::Status why) {
  latch_->Latch(why);
  return why;
}

absl::StatusOr<uint16_t> DeviceQueue::LoadAvailIdx() {
  memory_.ObserveRead(config_.avail_addr + kAvailIdxOffset, 2);
  const uint16_t idx = AcquireLoad16(avail_ + kAvailIdxOffset);
  const uint16_t pending = static_cast<uint16_t>(idx - last_avail_);
  if (pending > config_.size) {
    return Violation(absl::InvalidArgumentError(absl::StrFormat(
        "avail idx %u claims %u new entries after %u; queue size is %u", idx, pending,
        last_avail_, config_.size)));
  }
  shadow_avail_ = idx;
  return idx;
}

absl::StatusOr<std::optional<Chain>> DeviceQueue::Pop() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (shadow_avail_ == last_avail_) {
    VRPC_ASSIGN_OR_RETURN(const uint16_t idx, LoadAvailIdx());
    if (idx == last_avail_) return std::nullopt;
  }
  const uint64_t slot_offset = kAvailRingOffset + 2 * static_cast<uint64_t>(last_avail_ & mask_);
  memory_.ObserveRead(config_.avail_addr + slot_offset, 2);
  const uint16_t head = RelaxedLoad16(avail_ + slot_offset);
  if (head >= config_.size) {
    return Violation(absl::InvalidArgumentError(absl::StrFormat(
        "avail ring slot %u holds head %u >= queue size %u", last_avail_ & mask_, head,
        config_.size)));
  }
  if (in_flight_[head]) {
    return Violation(absl::InvalidArgumentError(
        absl::StrFormat("head %u made available again while in flight", head)));
  }
  absl::StatusOr<Chain> chain = walker_.Walk(memory_, desc_, config_.desc_addr, head);
  if (!chain.ok()) return Violation(chain.status());
  ++last_avail_;
  in_flight_[head] = true;
  in_flight_writable_[head] = chain->writable_bytes();
  ++in_flight_count_;
  ++stats_.chains_popped;
  return std::optional<Chain>(*std::move(chain));
}

absl::Status DeviceQueue::CheckCompletion(uint16_t head, uint32_t len) const {
  if (head >= config_.size || !in_flight_[head]) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PushUsed: head %u is not in flight", head));
  }
  if (len > in_flight_writable_[head]) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "PushUsed: %u bytes written exceeds the %u writable bytes of chain %u", len,
        in_flight_writable_[head], head));
  }
  return absl::OkStatus();
}

void DeviceQueue::WriteUsedElement(uint16_t head, uint32_t len) {
  const uint64_t offset = kUsedRingOffset + kUsedElemSize * static_cast<uint64_t>(used_idx_ & mask_);
  memory_.ObserveWrite(config_.used_addr + offset, kUsedElemSize);
  RelaxedStore32(used_ + offset, head);
  RelaxedStore32(used_ + offset + 4, len);
  ++used_idx_;
  in_flight_[head] = false;
  --in_flight_count_;
  ++stats_.used_pushed;
}

void DeviceQueue::PublishUsedIdx() {
  memory_.ObserveWrite(config_.used_addr + kUsedIdxOffset, 2);
  StoreRelease16(used_ + kUsedIdxOffset, used_idx_);
}

absl::Status DeviceQueue::PushUsed(uint16_t head, uint32_t written_len) {
  if (latch_->IsBroken()) return latch_->BrokenError();
  VRPC_RETURN_IF_ERROR(CheckCompletion(head, written_len));
  WriteUsedElement(head, written_len);
  PublishUsedIdx();
  return absl::OkStatus();
}

absl::Status DeviceQueue::PushUsedBatch(absl::Span<const UsedElement> elements) {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (elements.empty()) return absl::OkStatus();
  // Validate all (a head twice in one batch would be "not in flight" the
  // second time: mark as we go and undo).
  absl::Status status;
  size_t checked = 0;
  for (; checked < elements.size(); ++checked) {
    status = CheckCompletion(elements[checked].head, elements[checked].len);
    if (!status.ok()) break;
    in_flight_[elements[checked].head] = false;
  }
  for (size_t i = 0; i < checked; ++i) in_flight_[elements[i].head] = true;
  if (!status.ok()) return status;
  for (const UsedElement& e : elements) WriteUsedElement(e.head, e.len);
  PublishUsedIdx();
  return absl::OkStatus();
}

bool DeviceQueue::ShouldNotify() {
  if (latch_->IsBroken()) return false;
  if (used_idx_ == signalled_used_) return false;
  const uint16_t old_idx = signalled_used_;
  signalled_used_ = used_idx_;
  // Our used.idx store must be visible before we read the driver's event.
  FullFence();
  if (config_.event_idx) {
    const uint64_t offset = UsedEventOffset(config_.size);
    memory_.ObserveRead(config_.avail_addr + offset, 2);
    return NeedEvent(RelaxedLoad16(avail_ + offset), used_idx_, old_idx);
  }
  memory_.ObserveRead(config_.avail_addr + kAvailFlagsOffset, 2);
  return (RelaxedLoad16(avail_ + kAvailFlagsOffset) & kAvailFlagNoInterrupt) == 0;
}

absl::StatusOr<bool> DeviceQueue::EnableNotifications() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (config_.event_idx) {
    const uint64_t offset = AvailEventOffset(config_.size);
    memory_.ObserveWrite(config_.used_addr + offset, 2);
    RelaxedStore16(used_ + offset, last_avail_);
  } else {
    used_flags_ &= static_cast<uint16_t>(~kUsedFlagNoNotify);
    memory_.ObserveWrite(config_.used_addr + kUsedFlagsOffset, 2);
    RelaxedStore16(used_ + kUsedFlagsOffset, used_flags_);
  }
  // The re-arm must be visible before we look for buffers that raced it.
  FullFence();
  VRPC_ASSIGN_OR_RETURN(const uint16_t idx, LoadAvailIdx());
  return idx != last_avail_;
}

absl::Status DeviceQueue::DisableNotifications() {
  if (latch_->IsBroken()) return latch_->BrokenError();
  if (!config_.event_idx) {
    used_flags_ |= kUsedFlagNoNotify;
    memory_.ObserveWrite(config_.used_addr + kUsedFlagsOffset, 2);
    RelaxedStore16(used_ + kUsedFlagsOffset, used_flags_);
  }
  return absl::OkStatus();
}

absl::Status DeviceQueue::ReadChain(const Chain& chain, uint64_t offset,
                                    absl::Span<uint8_t> out) const {
  if (latch_->IsBroken()) return latch_->BrokenError();
  return ReadFromChain(memory_, chain, offset, out);
}

absl::Status DeviceQueue::WriteChain(const Chain& chain, uint64_t offset,
                                     absl::Span<const uint8_t> in) const {
  if (latch_->IsBroken()) return latch_->BrokenError();
  return WriteToChain(memory_, chain, offset, in);
}

absl::Status DeviceQueue::ForEachReadableSegment(
    const Chain& chain, uint64_t offset, uint64_t len,
    absl::FunctionRef<void(uint64_t, absl::Span<uint8_t>)> fn) const {
  if (latch_->IsBroken()) return latch_->BrokenError();
  return virtqueue::ForEachReadableSegment(memory_, chain, offset, len, fn);
}

absl::Status DeviceQueue::ForEachWritableSegment(
    const Chain& chain, uint64_t offset, uint64_t len,
    absl::FunctionRef<void(uint64_t, absl::Span<uint8_t>)> fn) const {
  if (latch_->IsBroken()) return latch_->BrokenError();
  return virtqueue::ForEachWritableSegment(memory_, chain, offset, len, fn);
}

}  // namespace virtqueue
}  // namespace vrpc
