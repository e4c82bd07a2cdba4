#include "transport_vsock/virtqueue/guest_memory.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace virtqueue {

struct GuestMemory::State {
  std::vector<MemoryRegion> regions;  // sorted by guest_addr, disjoint
  std::shared_ptr<const void> keepalive;
};

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// [addr, addr + len) with len > 0 has its last byte at addr + len - 1; that
// must not wrap.
bool RangeOverflows(uint64_t addr, uint64_t len) {
  return len != 0 && len - 1 > kU64Max - addr;
}

std::string RangeString(uint64_t addr, uint64_t len) {
  return absl::StrFormat("[0x%x, +0x%x)", addr, len);
}

absl::Status ValidateRegion(const MemoryRegion& r) {
  if (r.size == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("guest memory region at 0x%x has size 0", r.guest_addr));
  }
  if (r.host_addr == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory region at 0x%x has no host mapping", r.guest_addr));
  }
  // The exclusive end must be representable: guest_addr + size <= 2^64 - 1.
  if (r.size > kU64Max - r.guest_addr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guest memory region ", RangeString(r.guest_addr, r.size),
        " overflows the guest address space"));
  }
  const uintptr_t host = reinterpret_cast<uintptr_t>(r.host_addr);
  if (r.size > std::numeric_limits<uintptr_t>::max() - host) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guest memory region ", RangeString(r.guest_addr, r.size),
        " overflows the host address space"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GuestMemory> GuestMemory::Create(
    std::vector<MemoryRegion> regions, std::shared_ptr<const void> keepalive) {
  for (const MemoryRegion& r : regions) {
    absl::Status s = ValidateRegion(r);
    if (!s.ok()) return s;
  }
  std::sort(regions.begin(), regions.end(),
            [](const MemoryRegion& a, const MemoryRegion& b) {
              return a.guest_addr < b.guest_addr;
            });
  for (size_t i = 1; i < regions.size(); ++i) {
    const MemoryRegion& prev = regions[i - 1];
    if (prev.guest_addr + prev.size > regions[i].guest_addr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "guest memory regions ", RangeString(prev.guest_addr, prev.size), " and ",
          RangeString(regions[i].guest_addr, regions[i].size), " overlap"));
    }
  }
  auto state = std::make_shared<State>();
  state->regions = std::move(regions);
  state->keepalive = std::move(keepalive);
  return GuestMemory(std::move(state));
}

GuestMemory::GuestMemory() : GuestMemory(std::make_shared<const State>()) {}

GuestMemory::GuestMemory(std::shared_ptr<const State> state) : state_(std::move(state)) {}

const MemoryRegion* GuestMemory::FindRegion(uint64_t addr) const {
  const std::vector<MemoryRegion>& rs = state_->regions;
  // First region starting after addr; the candidate is the one before it.
  auto it = std::upper_bound(rs.begin(), rs.end(), addr,
                             [](uint64_t a, const MemoryRegion& r) {
                               return a < r.guest_addr;
                             });
  if (it == rs.begin()) return nullptr;
  --it;
  if (addr - it->guest_addr >= it->size) return nullptr;
  return &*it;
}

absl::StatusOr<uint8_t*> GuestMemory::Translate(uint64_t addr, uint64_t len) const {
  if (len == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot translate an empty range at 0x%x", addr));
  }
  if (RangeOverflows(addr, len)) {
    return absl::OutOfRangeError(
        absl::StrCat("guest range ", RangeString(addr, len), " overflows"));
  }
  const MemoryRegion* r = FindRegion(addr);
  if (r == nullptr) {
    return absl::OutOfRangeError(
        absl::StrCat("guest range ", RangeString(addr, len), " is not mapped"));
  }
  const uint64_t offset = addr - r->guest_addr;
  if (len > r->size - offset) {
    return absl::OutOfRangeError(absl::StrCat(
        "guest range ", RangeString(addr, len), " crosses the end of its region"));
  }
  return r->host_addr + offset;
}

absl::Status GuestMemory::ForEachSegment(
    uint64_t addr, uint64_t len,
    absl::FunctionRef<void(uint64_t guest_addr, absl::Span<uint8_t> host)> fn) const {
  if (len == 0) return absl::OkStatus();
  if (RangeOverflows(addr, len)) {
    return absl::OutOfRangeError(
        absl::StrCat("guest range ", RangeString(addr, len), " overflows"));
  }
  // Pass 1: the whole range must be mapped before anything is touched.
  Segments segments;
  if (!AppendSegments(addr, len, segments)) {
    return absl::OutOfRangeError(absl::StrCat(
        "guest range ", RangeString(addr, len), " is not entirely mapped"));
  }
  // Pass 2: hand out the pieces.
  for (const Segment& s : segments) fn(s.guest_addr, s.host);
  return absl::OkStatus();
}

bool GuestMemory::AppendSegments(uint64_t addr, uint64_t len, Segments& out) const {
  if (len == 0) return true;
  if (RangeOverflows(addr, len)) return false;
  uint64_t cur = addr;
  uint64_t remaining = len;
  while (remaining > 0) {  // at most regions().size() steps, as in IsMapped
    const MemoryRegion* r = FindRegion(cur);
    if (r == nullptr) return false;
    const uint64_t offset = cur - r->guest_addr;
    const uint64_t chunk = std::min(remaining, r->size - offset);
    out.push_back({cur, absl::Span<uint8_t>(r->host_addr + offset, static_cast<size_t>(chunk))});
    cur += chunk;
    remaining -= chunk;
  }
  return true;
}

bool GuestMemory::IsMapped(uint64_t addr, uint64_t len) const {
  if (len == 0) return true;
  if (RangeOverflows(addr, len)) return false;
  uint64_t cur = addr;
  uint64_t remaining = len;
  // Each step consumes a whole region, and regions are disjoint, so the loop
  // runs at most regions().size() times.
  while (remaining > 0) {
    const MemoryRegion* r = FindRegion(cur);
    if (r == nullptr) return false;
    const uint64_t chunk = std::min(remaining, r->size - (cur - r->guest_addr));
    cur += chunk;
    remaining -= chunk;
  }
  return true;
}

absl::Status GuestMemory::CopyFrom(uint64_t addr, absl::Span<uint8_t> out) const {
  size_t done = 0;
  return ForEachSegment(addr, out.size(),
                        [&](uint64_t guest_addr, absl::Span<uint8_t> host) {
                          ObserveRead(guest_addr, host.size());
                          ReadOnceCopy(out.data() + done, host.data(), host.size());
                          done += host.size();
                        });
}

absl::Status GuestMemory::CopyTo(uint64_t addr, absl::Span<const uint8_t> in) const {
  size_t done = 0;
  return ForEachSegment(addr, in.size(),
                        [&](uint64_t guest_addr, absl::Span<uint8_t> host) {
                          ObserveWrite(guest_addr, host.size());
                          WriteShared(host.data(), in.data() + done, host.size());
                          done += host.size();
                        });
}

absl::Span<const MemoryRegion> GuestMemory::regions() const { return state_->regions; }

const std::shared_ptr<const void>& GuestMemory::keepalive() const {
  return state_->keepalive;
}

GuestMemory GuestMemory::WithObserver(GuestMemoryObserver* observer) const {
  GuestMemory copy = *this;
  copy.observer_ = observer;
  return copy;
}

}  // namespace virtqueue
}  // namespace vrpc
