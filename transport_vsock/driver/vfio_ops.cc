#include "transport_vsock/driver/vfio_ops.h"

#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vsock {
namespace {

static_assert(kVfioPciConfigRegion == VFIO_PCI_CONFIG_REGION_INDEX, "config region");
static_assert(kVfioPciMsixIrq == VFIO_PCI_MSIX_IRQ_INDEX, "MSI-X index");

absl::Status Errno(const std::string& what) { return absl::ErrnoToStatus(errno, what); }

class LinuxVfioOps final : public VfioOps {
 public:
  explicit LinuxVfioOps(std::string root) : root_(std::move(root)) {}

  absl::StatusOr<UniqueFd> OpenContainer() override {
    const std::string path = root_ + "/vfio";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return Errno("open " + path);
    if (::ioctl(fd.get(), VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
      return absl::FailedPreconditionError("unknown VFIO API version");
    }
    if (::ioctl(fd.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0 &&
        ::ioctl(fd.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0) {
      return absl::FailedPreconditionError("VFIO has no type1 IOMMU (no IOMMU, or no-IOMMU "
                                           "mode, which vrpc's VFIO bus does not support)");
    }
    return fd;
  }

  absl::StatusOr<UniqueFd> OpenGroup(int group) override {
    const std::string path = absl::StrCat(root_, "/", group);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return Errno("open " + path);
    vfio_group_status status{};
    status.argsz = sizeof(status);
    if (::ioctl(fd.get(), VFIO_GROUP_GET_STATUS, &status) != 0) return Errno("group status");
    if ((status.flags & VFIO_GROUP_FLAGS_VIABLE) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "IOMMU group ", group, " is not viable: bind all its devices to vfio-pci"));
    }
    return fd;
  }

  absl::Status AttachGroup(int group_fd, int container_fd) override {
    if (::ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container_fd) != 0) {
      return Errno("VFIO_GROUP_SET_CONTAINER");
    }
    if (::ioctl(container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) != 0 &&
        ::ioctl(container_fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) != 0) {
      return Errno("VFIO_SET_IOMMU");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UniqueFd> DeviceFd(int group_fd, const std::string& address) override {
    UniqueFd fd(::ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, address.c_str()));
    if (!fd.valid()) return Errno("VFIO_GROUP_GET_DEVICE_FD " + address);
    return fd;
  }

  absl::StatusOr<VfioRegionInfo> RegionInfo(int device_fd, uint32_t index) override {
    vfio_region_info info{};
    info.argsz = sizeof(info);
    info.index = index;
    if (::ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &info) != 0) {
      return Errno(absl::StrCat("VFIO_DEVICE_GET_REGION_INFO ", index));
    }
    VfioRegionInfo out;
    out.size = info.size;
    out.offset = info.offset;
    out.readable = (info.flags & VFIO_REGION_INFO_FLAG_READ) != 0;
    out.writable = (info.flags & VFIO_REGION_INFO_FLAG_WRITE) != 0;
    out.mmappable = (info.flags & VFIO_REGION_INFO_FLAG_MMAP) != 0;
    return out;
  }

  absl::StatusOr<uint32_t> IrqCount(int device_fd, uint32_t index) override {
    vfio_irq_info info{};
    info.argsz = sizeof(info);
    info.index = index;
    if (::ioctl(device_fd, VFIO_DEVICE_GET_IRQ_INFO, &info) != 0) {
      return Errno("VFIO_DEVICE_GET_IRQ_INFO");
    }
    return info.count;
  }

  absl::StatusOr<void*> Mmap(int device_fd, uint64_t offset, uint64_t size) override {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, device_fd,
                     static_cast<off_t>(offset));
    if (p == MAP_FAILED) return Errno("mmap a VFIO region");
    return p;
  }
  void Munmap(void* addr, uint64_t size) override { ::munmap(addr, size); }

  absl::Status Pread(int fd, void* buf, size_t n, uint64_t offset) override {
    if (::pread(fd, buf, n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
      return Errno("pread a VFIO region");
    }
    return absl::OkStatus();
  }
  absl::Status Pwrite(int fd, const void* buf, size_t n, uint64_t offset) override {
    if (::pwrite(fd, buf, n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
      return Errno("pwrite a VFIO region");
    }
    return absl::OkStatus();
  }

  absl::Status MapDma(int container_fd, const void* vaddr, uint64_t iova,
                      uint64_t size) override {
    vfio_iommu_type1_dma_map map{};
    map.argsz = sizeof(map);
    map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    map.vaddr = reinterpret_cast<uintptr_t>(vaddr);
    map.iova = iova;
    map.size = size;
    if (::ioctl(container_fd, VFIO_IOMMU_MAP_DMA, &map) != 0) return Errno("VFIO_IOMMU_MAP_DMA");
    return absl::OkStatus();
  }

  absl::Status UnmapDma(int container_fd, uint64_t iova, uint64_t size) override {
    vfio_iommu_type1_dma_unmap unmap{};
    unmap.argsz = sizeof(unmap);
    unmap.iova = iova;
    unmap.size = size;
    if (::ioctl(container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap) != 0) {
      return Errno("VFIO_IOMMU_UNMAP_DMA");
    }
    return absl::OkStatus();
  }

  absl::Status SetMsix(int device_fd, absl::Span<const int> eventfds) override {
    std::vector<uint8_t> buf(sizeof(vfio_irq_set) + eventfds.size() * sizeof(int32_t));
    auto* set = reinterpret_cast<vfio_irq_set*>(buf.data());
    set->argsz = static_cast<uint32_t>(buf.size());
    set->flags = VFIO_IRQ_SET_ACTION_TRIGGER |
                 (eventfds.empty() ? VFIO_IRQ_SET_DATA_NONE : VFIO_IRQ_SET_DATA_EVENTFD);
    set->index = VFIO_PCI_MSIX_IRQ_INDEX;
    set->start = 0;
    set->count = static_cast<uint32_t>(eventfds.size());
    for (size_t i = 0; i < eventfds.size(); ++i) {
      const int32_t fd = eventfds[i];
      std::memcpy(set->data + i * sizeof(int32_t), &fd, sizeof(fd));
    }
    if (::ioctl(device_fd, VFIO_DEVICE_SET_IRQS, set) != 0) return Errno("VFIO_DEVICE_SET_IRQS");
    return absl::OkStatus();
  }

 private:
  const std::string root_;
};

}  // namespace

std::unique_ptr<VfioOps> MakeLinuxVfioOps(std::string dev_root) {
  return std::make_unique<LinuxVfioOps>(std::move(dev_root));
}

}  // namespace vsock
}  // namespace vrpc
