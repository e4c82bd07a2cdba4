// File: transport_vsock/driver/vfio_ops.h
//
// VfioOps: the Linux VFIO calls VfioBus makes (container, group, device fd,
// region info and access, DMA mapping, MSI-X eventfds), behind an interface
// so that tests run the bus against a fake (testing/fake_vfio.h) without
// /dev/vfio. LinuxVfioOps makes the real ioctls (linux/vfio.h).
//
// Every call returns a Status for the environment's failures; nothing here
// interprets device registers. Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_VFIO_OPS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_VFIO_OPS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"

namespace vrpc {
namespace vsock {

// VFIO PCI region and IRQ indices (linux/vfio.h).
inline constexpr uint32_t kVfioPciConfigRegion = 7;
inline constexpr uint32_t kVfioPciMsixIrq = 2;

struct VfioRegionInfo {
  uint64_t size = 0;
  uint64_t offset = 0;  // of the region in the device fd
  bool readable = false;
  bool writable = false;
  bool mmappable = false;
};

class VfioOps {
 public:
  virtual ~VfioOps() = default;
  // /dev/vfio/vfio, API version checked, a type1 IOMMU available.
  virtual absl::StatusOr<UniqueFd> OpenContainer() = 0;
  // /dev/vfio/<group>; kFailedPrecondition unless the group is viable (all
  // its devices bound to vfio-pci or unbound).
  virtual absl::StatusOr<UniqueFd> OpenGroup(int group) = 0;
  // VFIO_GROUP_SET_CONTAINER then VFIO_SET_IOMMU (type1v2, else type1).
  virtual absl::Status AttachGroup(int group_fd, int container_fd) = 0;
  virtual absl::StatusOr<UniqueFd> DeviceFd(int group_fd, const std::string& address) = 0;
  virtual absl::StatusOr<VfioRegionInfo> RegionInfo(int device_fd, uint32_t index) = 0;
  // Vectors of IRQ index |index| (MSI-X: the table size).
  virtual absl::StatusOr<uint32_t> IrqCount(int device_fd, uint32_t index) = 0;
  // Maps |size| bytes of the device fd at |offset| read-write, shared.
  virtual absl::StatusOr<void*> Mmap(int device_fd, uint64_t offset, uint64_t size) = 0;
  virtual void Munmap(void* addr, uint64_t size) = 0;
  // Exactly |n| bytes or an error.
  virtual absl::Status Pread(int device_fd, void* buf, size_t n, uint64_t offset) = 0;
  virtual absl::Status Pwrite(int device_fd, const void* buf, size_t n, uint64_t offset) = 0;
  // VFIO_IOMMU_MAP_DMA / UNMAP_DMA (read and write).
  virtual absl::Status MapDma(int container_fd, const void* vaddr, uint64_t iova,
                              uint64_t size) = 0;
  virtual absl::Status UnmapDma(int container_fd, uint64_t iova, uint64_t size) = 0;
  // VFIO_DEVICE_SET_IRQS, MSI-X, trigger: vector i signals |eventfds[i]|.
  // An empty span disables MSI-X.
  virtual absl::Status SetMsix(int device_fd, absl::Span<const int> eventfds) = 0;
};

// The real thing; |dev_root| is "/dev/vfio".
std::unique_ptr<VfioOps> MakeLinuxVfioOps(std::string dev_root = "/dev/vfio");

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_VFIO_OPS_H_
