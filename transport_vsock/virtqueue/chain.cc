#include "transport_vsock/virtqueue/chain.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/base/logging.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace virtqueue {

Chain::Chain(uint16_t head, Descriptors descriptors, bool indirect)
    : head_(head), indirect_(indirect), descriptors_(std::move(descriptors)) {
  uint64_t readable = 0;
  uint64_t writable = 0;
  bool seen_writable = false;
  for (const ChainDescriptor& d : descriptors_) {
    if (d.writable) {
      seen_writable = true;
      writable += d.len;
    } else {
      VRPC_CHECK(!seen_writable) << "readable descriptor after a writable one";
      readable += d.len;
      ++readable_count_;
    }
  }
  VRPC_CHECK(readable + writable <= std::numeric_limits<uint32_t>::max())
      << "chain longer than 2^32 - 1 bytes";
  readable_bytes_ = static_cast<uint32_t>(readable);
  writable_bytes_ = static_cast<uint32_t>(writable);
}

namespace {

using SegmentFn = absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)>;
using PieceFn = absl::FunctionRef<bool(uint64_t guest_addr, uint64_t len)>;

// Splits bytes [offset, offset + len) of the concatenation of |descs| into
// per-descriptor pieces and calls |piece| for each until it returns false.
// Returns false if a piece's address arithmetic overflows or |piece| refused.
bool ForEachPiece(absl::Span<const ChainDescriptor> descs, uint64_t offset, uint64_t len,
                  PieceFn piece) {
  uint64_t skip = offset;
  uint64_t remaining = len;
  for (const ChainDescriptor& d : descs) {
    if (remaining == 0) break;
    if (skip > d.len) {
      skip -= d.len;
      continue;
    }
    if (skip > std::numeric_limits<uint64_t>::max() - d.addr) return false;
    const uint64_t n = std::min<uint64_t>(remaining, d.len - skip);
    if (!piece(d.addr + skip, n)) return false;
    remaining -= n;
    skip = 0;
  }
  return remaining == 0;
}

absl::Status ForEachSegmentIn(const GuestMemory& memory,
                              absl::Span<const ChainDescriptor> descs, uint64_t total,
                              uint64_t offset, uint64_t len, bool write, SegmentFn fn) {
  if (offset > total || len > total - offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "chain range [%u, +%u) exceeds the chain's %u %s bytes", offset, len, total,
        write ? "writable" : "readable"));
  }
  if (len == 0) return absl::OkStatus();
  // Pass 1: every piece mapped and translated, before any byte is touched.
  GuestMemory::Segments segments;
  const bool mapped = ForEachPiece(descs, offset, len, [&](uint64_t addr, uint64_t n) {
    return memory.AppendSegments(addr, n, segments);
  });
  if (!mapped) {
    return absl::OutOfRangeError("chain buffer is not mapped in guest memory");
  }
  // Pass 2: hand them out.
  for (const GuestMemory::Segment& s : segments) {
    if (write) {
      memory.ObserveWrite(s.guest_addr, s.host.size());
    } else {
      memory.ObserveRead(s.guest_addr, s.host.size());
    }
    fn(s.guest_addr, s.host);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ForEachReadableSegment(const GuestMemory& memory, const Chain& chain,
                                    uint64_t offset, uint64_t len, SegmentFn fn) {
  return ForEachSegmentIn(memory, chain.readable(), chain.readable_bytes(), offset, len,
                          /*write=*/false, fn);
}

absl::Status ForEachWritableSegment(const GuestMemory& memory, const Chain& chain,
                                    uint64_t offset, uint64_t len, SegmentFn fn) {
  return ForEachSegmentIn(memory, chain.writable(), chain.writable_bytes(), offset, len,
                          /*write=*/true, fn);
}

absl::Status ReadFromChain(const GuestMemory& memory, const Chain& chain, uint64_t offset,
                           absl::Span<uint8_t> out) {
  size_t done = 0;
  return ForEachReadableSegment(memory, chain, offset, out.size(),
                                [&](uint64_t, absl::Span<uint8_t> host) {
                                  ReadOnceCopy(out.data() + done, host.data(), host.size());
                                  done += host.size();
                                });
}

absl::Status WriteToChain(const GuestMemory& memory, const Chain& chain, uint64_t offset,
                          absl::Span<const uint8_t> in) {
  size_t done = 0;
  return ForEachWritableSegment(memory, chain, offset, in.size(),
                                [&](uint64_t, absl::Span<uint8_t> host) {
                                  WriteShared(host.data(), in.data() + done, host.size());
                                  done += host.size();
                                });
}

}  // namespace virtqueue
}  // namespace vrpc
