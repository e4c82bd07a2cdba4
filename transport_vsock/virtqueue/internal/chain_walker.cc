#include "transport_vsock/virtqueue/internal/chain_walker.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"

namespace vrpc {
namespace virtqueue {
namespace internal {

// The table being walked: the descriptor table or one indirect table.
struct ChainWalker::Table {
  const uint8_t* host = nullptr;
  uint64_t guest_addr = 0;
  uint32_t size = 0;                 // entries
  std::vector<uint32_t>* visited = nullptr;
  bool indirect = false;
};

// Accumulates descriptors and enforces the per-chain rules.
class ChainWalker::Builder {
 public:
  Builder(const GuestMemory& memory, uint16_t head) : memory_(memory), head_(head) {}

  absl::Status Add(const Descriptor& d, uint32_t index) {
    const bool writable = (d.flags & kDescFlagWrite) != 0;
    if (!writable && seen_writable_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "chain %u: device-readable descriptor %u follows a device-writable one",
          head_, index));
    }
    total_ += d.len;
    if (total_ > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("chain %u: total length exceeds 2^32 - 1", head_));
    }
    if (d.len > 0 && !memory_.IsMapped(d.addr, d.len)) {
      return absl::OutOfRangeError(absl::StrFormat(
          "chain %u: descriptor %u buffer [0x%x, +0x%x) is not in guest memory", head_,
          index, d.addr, d.len));
    }
    seen_writable_ = seen_writable_ || writable;
    descriptors_.push_back(ChainDescriptor{d.addr, d.len, writable});
    return absl::OkStatus();
  }

  Chain Finish(bool indirect) && { return Chain(head_, std::move(descriptors_), indirect); }

 private:
  const GuestMemory& memory_;
  const uint16_t head_;
  Chain::Descriptors descriptors_;
  uint64_t total_ = 0;
  bool seen_writable_ = false;
};

ChainWalker::ChainWalker(uint32_t queue_size, bool indirect_allowed)
    : queue_size_(queue_size),
      indirect_allowed_(indirect_allowed),
      direct_visited_(queue_size, 0),
      indirect_visited_(indirect_allowed ? queue_size : 0, 0) {
  VRPC_CHECK(IsValidQueueSize(queue_size)) << queue_size;
}

void ChainWalker::NextStamp() {
  if (++stamp_ == 0) {
    std::fill(direct_visited_.begin(), direct_visited_.end(), 0);
    std::fill(indirect_visited_.begin(), indirect_visited_.end(), 0);
    stamp_ = 1;
  }
}

absl::Status ChainWalker::EnterIndirect(const GuestMemory& memory, const Descriptor& d,
                                        uint16_t index, Table* table) {
  if (!indirect_allowed_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "descriptor %u: INDIRECT used but VIRTIO_F_INDIRECT_DESC not negotiated", index));
  }
  if (table->indirect) {
    return absl::InvalidArgumentError(
        absl::StrFormat("indirect descriptor %u inside an indirect table", index));
  }
  if ((d.flags & kDescFlagNext) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("descriptor %u: INDIRECT together with NEXT", index));
  }
  if (d.len == 0 || d.len % kDescSize != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "descriptor %u: indirect table length %u is not a positive multiple of 16", index,
        d.len));
  }
  const uint32_t entries = d.len / static_cast<uint32_t>(kDescSize);
  if (entries > queue_size_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "descriptor %u: indirect table of %u entries exceeds the queue size %u", index,
        entries, queue_size_));
  }
  absl::StatusOr<uint8_t*> host = memory.Translate(d.addr, d.len);
  if (!host.ok()) {
    return absl::OutOfRangeError(absl::StrFormat("descriptor %u: indirect table: %s",
                                                 index, host.status().message()));
  }
  *table = Table{*host, d.addr, entries, &indirect_visited_, /*indirect=*/true};
  return absl::OkStatus();
}

absl::StatusOr<Chain> ChainWalker::Walk(const GuestMemory& memory, const uint8_t* table,
                                        uint64_t table_addr, uint16_t head) {
  VRPC_CHECK(head < queue_size_) << head;
  NextStamp();
  Builder builder(memory, head);
  Table t{table, table_addr, queue_size_, &direct_visited_, /*indirect=*/false};
  uint32_t index = head;
  // Terminates: each iteration visits a fresh index of the current table (a
  // repeat is rejected before the read), and the walk switches tables at
  // most once. |ttl| states the same bound independently: at most one read
  // per entry of the table being walked.
  uint32_t ttl = t.size;
  for (;;) {
    uint32_t& visited = (*t.visited)[index];
    if (visited == stamp_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "chain %u: descriptor loop at %s index %u", head,
          t.indirect ? "indirect" : "ring", index));
    }
    if (ttl == 0) {  // unreachable while the visited check holds
      return absl::InvalidArgumentError(
          absl::StrFormat("chain %u: longer than its table (%u entries)", head, t.size));
    }
    --ttl;
    visited = stamp_;
    const uint64_t offset = uint64_t{index} * kDescSize;
    memory.ObserveRead(t.guest_addr + offset, kDescSize);
    const Descriptor d = ReadDescriptor(t.host + offset);
    ++descriptors_read_;
    if ((d.flags & kDescFlagIndirect) != 0) {
      VRPC_RETURN_IF_ERROR(EnterIndirect(memory, d, static_cast<uint16_t>(index), &t));
      ttl = t.size;
      index = 0;
      continue;
    }
    VRPC_RETURN_IF_ERROR(builder.Add(d, index));
    if ((d.flags & kDescFlagNext) == 0) break;
    if (d.next >= t.size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "chain %u: next index %u out of range (table size %u)", head, d.next, t.size));
    }
    index = d.next;
  }
  return std::move(builder).Finish(t.indirect);
}

}  // namespace internal
}  // namespace virtqueue
}  // namespace vrpc
