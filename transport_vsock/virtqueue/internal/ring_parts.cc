#include "transport_vsock/virtqueue/internal/ring_parts.h"

#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace virtqueue {
namespace internal {
namespace {

absl::Status CheckAligned(const char* what, uint64_t addr, uint64_t align) {
  if (addr % align != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s address 0x%x is not %u-byte aligned", what, addr, align));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint8_t*> TranslatePart(const GuestMemory& memory, const char* what,
                                       uint64_t addr, uint64_t len) {
  absl::StatusOr<uint8_t*> host = memory.Translate(addr, len);
  if (!host.ok()) {
    return absl::OutOfRangeError(
        absl::StrFormat("%s: %s", what, host.status().message()));
  }
  return host;
}

}  // namespace

absl::StatusOr<RingParts> TranslateRingParts(const GuestMemory& memory, uint64_t size,
                                             uint64_t desc_addr, uint64_t avail_addr,
                                             uint64_t used_addr, bool event_idx) {
  if (!IsValidQueueSize(size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue size %u is not a power of two in [1, %u]", size, kMaxQueueSize));
  }
  VRPC_RETURN_IF_ERROR(CheckAligned("descriptor table", desc_addr, kDescTableAlign));
  VRPC_RETURN_IF_ERROR(CheckAligned("available ring", avail_addr, kAvailRingAlign));
  VRPC_RETURN_IF_ERROR(CheckAligned("used ring", used_addr, kUsedRingAlign));
  RingParts parts;
  VRPC_ASSIGN_OR_RETURN(parts.desc, TranslatePart(memory, "descriptor table", desc_addr,
                                                  DescTableBytes(size)));
  VRPC_ASSIGN_OR_RETURN(parts.avail, TranslatePart(memory, "available ring", avail_addr,
                                                   AvailRingBytes(size, event_idx)));
  VRPC_ASSIGN_OR_RETURN(parts.used, TranslatePart(memory, "used ring", used_addr,
                                                  UsedRingBytes(size, event_idx)));
  return parts;
}

}  // namespace internal
}  // namespace virtqueue
}  // namespace vrpc
