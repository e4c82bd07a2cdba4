// File: transport_vsock/vhost_user/memory.h
//
// MemoryTable: the guest memory a vhost-user frontend shared with us, mapped
// into this process. Built from SET_MEM_TABLE (or ADD_MEM_REG / REM_MEM_REG);
// immutable once built.
//
// Lifetime. Tables are handed out as std::shared_ptr<const MemoryTable>. Each
// region's mmap is itself reference-counted, so a table derived from another
// (ADD_MEM_REG, REM_MEM_REG) shares the regions they have in common, and a
// region is unmapped when the last table holding it is destroyed. A device
// that keeps a table (or a Slice pointing into it, through the table's
// shared_ptr) keeps the memory mapped even after the frontend replaced the
// table or disconnected. The descriptors the regions came from are closed as
// soon as they are mapped.
//
// Validation (all input untrusted): size > 0, no u64 overflow in
// guest_addr+size / user_addr+size / mmap_offset+size, no two regions
// overlapping in guest-physical or in frontend-user address space, the fd is
// a regular file (memfd, tmpfs, hugetlbfs) at least mmap_offset+size long,
// and the table's total size within a caller-given cap.
//
// Thread-safety: a MemoryTable is immutable and may be read from any thread;
// the bytes it maps are shared with the guest and change under our feet
// (read them once, see HARDENING.md row 7).
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_MEMORY_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {

// One region of guest memory as mapped here. Translation of a guest-physical
// address |gpa| in [guest_addr, guest_addr + size) is
// host_addr + (gpa - guest_addr).
struct MappedRegion {
  uint64_t guest_addr = 0;   // guest-physical address of the first byte
  uint64_t size = 0;         // bytes
  uint64_t user_addr = 0;    // the frontend's virtual address of the first byte
  uint64_t mmap_offset = 0;  // offset of the first byte in the frontend's fd
  uint8_t* host_addr = nullptr;  // the first byte, mapped in this process
};

class MemoryTable {
 public:
  // Limits applied while building a table.
  struct Limits {
    size_t max_regions = 32;
    uint64_t max_total_bytes = uint64_t{1} << 40;  // 1 TiB
  };

  // Maps |regions| (already checked with CheckMemoryRegion or not: checked
  // again) from |fds|, one per region in order; takes ownership of the fds
  // and closes them whatever happens. kInvalidArgument if the layout, the
  // files or the limits are wrong (then nothing stays mapped); errno codes
  // if mmap fails.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const MemoryTable>> Map(
      absl::Span<const MemoryRegionDesc> regions, std::vector<UniqueFd> fds,
      const Limits& limits);

  // An empty table (no regions).
  static std::shared_ptr<const MemoryTable> Empty();

  // A new table with this table's regions plus |region| mapped from |fd|
  // (ownership taken, always closed). This table is unchanged. Same errors
  // as Map.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const MemoryTable>> WithRegionAdded(
      const MemoryRegionDesc& region, UniqueFd fd, const Limits& limits) const;

  // A new table without the region whose guest_addr, user_addr and size all
  // equal |region|'s (mmap_offset is ignored, as vhost-user.rst says).
  // kNotFound if there is none.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const MemoryTable>>
  WithRegionRemoved(const MemoryRegionDesc& region) const;

  ~MemoryTable();
  MemoryTable(const MemoryTable&) = delete;
  MemoryTable& operator=(const MemoryTable&) = delete;

  // Regions sorted by guest_addr; non-overlapping in both address spaces.
  absl::Span<const MappedRegion> regions() const { return regions_; }
  bool empty() const { return regions_.empty(); }
  // Sum of the regions' sizes.
  uint64_t total_size() const { return total_size_; }

  // The region containing all of [guest_addr, guest_addr + len), or nullptr
  // (also when the range overflows or spans two regions).
  const MappedRegion* FindGuest(uint64_t guest_addr, uint64_t len) const;
  // The region containing all of [user_addr, user_addr + len) in the
  // frontend's address space, or nullptr.
  const MappedRegion* FindUser(uint64_t user_addr, uint64_t len) const;
  // Host pointer for [guest_addr, guest_addr + len) inside one region, or
  // nullptr.
  uint8_t* GuestToHost(uint64_t guest_addr, uint64_t len) const;
  // Guest-physical address of frontend user address |user_addr|, requiring
  // [user_addr, user_addr + len) inside one region. kOutOfRange otherwise.
  [[nodiscard]] absl::StatusOr<uint64_t> UserToGuest(uint64_t user_addr,
                                                     uint64_t len) const;

  // Bytes currently mmap'd by all tables of this process (page rounding
  // included). For tests and metrics. Thread-safe.
  static uint64_t LiveMappedBytes();
  // Number of region mappings currently alive in this process. Thread-safe.
  static uint64_t LiveMappings();

 private:
  class Mapping;  // one mmap; munmap in its destructor

  MemoryTable() = default;

  std::vector<MappedRegion> regions_;
  // mappings_[i] backs regions_[i].
  std::vector<std::shared_ptr<const Mapping>> mappings_;
  uint64_t total_size_ = 0;
};

}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_MEMORY_H_
