// File: transport_vsock/driver/pci/physical_memory.h
//
// PhysicalMemory: DMA memory for a device that addresses guest-physical
// memory directly (UIO: no IOMMU, so device address == physical address).
// It is a memfd of hugepages (or, if asked, normal pages), populated and
// locked, whose pages' physical addresses come from /proc/self/pagemap
// (needs CAP_SYS_ADMIN; without it the kernel reports PFN 0). The pages are
// then mapped again in physical order, so that every physically contiguous
// run of pages is also virtually contiguous: an allocation is carved out of
// one run, and a descriptor for it names one physical range.
//
// Hugepages: the pool needs dma_bytes / page_size free hugepages (reserve
// them with vm.nr_hugepages or hugepages=N). Hugepages do not move; normal
// pages may (compaction), so page_size 4096 is for tests and small pools.
//
// Lifetime: every DmaRegion's keepalive and memory() hold the mapping; it is
// unmapped when the last holder goes (this object may go first). Thread-compatible (allocate from one
// thread).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PCI_PHYSICAL_MEMORY_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PCI_PHYSICAL_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace vsock {
namespace pci {

// Virtual address -> physical address of the page mapped there (present).
using VirtToPhys = std::function<absl::StatusOr<uint64_t>(const void*)>;

// Reads /proc/self/pagemap (or |path|): PFN in bits 0-54 if bit 63
// (present) is set. kFailedPrecondition for a page not present;
// kPermissionDenied when the PFN reads as 0 (not root).
VirtToPhys PagemapVirtToPhys(std::string path = "/proc/self/pagemap");

struct PhysicalMemoryOptions {
  size_t bytes = 32 << 20;          // rounded up to page_size
  size_t page_size = 2 << 20;       // a hugepage size, or 4096 for normal pages
  VirtToPhys virt_to_phys;          // null: PagemapVirtToPhys()
};

class PhysicalMemory {
 public:
  // kResourceExhausted when the hugepages are not there; kPermissionDenied
  // without the right to see physical addresses; kInvalidArgument for a
  // page size that is not a power of two >= 4096.
  static absl::StatusOr<std::unique_ptr<PhysicalMemory>> Create(PhysicalMemoryOptions options);
  ~PhysicalMemory() = default;
  PhysicalMemory(const PhysicalMemory&) = delete;
  PhysicalMemory& operator=(const PhysicalMemory&) = delete;

  // |size| bytes (rounded up to 4 KiB), zeroed, physically contiguous.
  // kResourceExhausted if no run has that much left.
  absl::StatusOr<DmaRegion> Allocate(size_t size);
  // Physical address -> host pointer for every run; holds the mapping.
  const virtqueue::GuestMemory& memory() const { return memory_; }
  // Physically contiguous runs, and the largest, in bytes.
  size_t runs() const { return runs_.size(); }
  size_t largest_run() const;

 private:
  struct Run {
    uint64_t phys = 0;
    uint8_t* host = nullptr;
    size_t size = 0;
    size_t used = 0;
  };
  // The memfd and the virtual range it is mapped into (munmapped when the
  // last DmaRegion / GuestMemory holding it goes).
  struct Mapping {
    ~Mapping();
    UniqueFd fd;
    uint8_t* reserve = nullptr;
    size_t reserve_size = 0;
  };
  PhysicalMemory() = default;
  absl::Status Map(const PhysicalMemoryOptions& options);

  std::shared_ptr<Mapping> mapping_ = std::make_shared<Mapping>();
  std::vector<Run> runs_;
  virtqueue::GuestMemory memory_;
};

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PCI_PHYSICAL_MEMORY_H_
