#include "transport_vsock/driver/testing/fake_vfio.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vsock {
namespace testing {
namespace {

constexpr int kRegionShift = 40;

absl::StatusOr<UniqueFd> DummyFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "eventfd");
  return fd;
}

}  // namespace

class FakeVfio::Ops final : public VfioOps {
 public:
  explicit Ops(FakeVfio& f) : f_(f) {}

  absl::StatusOr<UniqueFd> OpenContainer() override { return DummyFd(); }
  absl::StatusOr<UniqueFd> OpenGroup(int group) override {
    if (!f_.group_viable) return absl::FailedPreconditionError("group not viable");
    f_.opened_group = group;
    return DummyFd();
  }
  absl::Status AttachGroup(int group_fd, int container_fd) override {
    f_.attached_group = f_.opened_group;
    return absl::OkStatus();
  }
  absl::StatusOr<UniqueFd> DeviceFd(int group_fd, const std::string& address) override {
    return DummyFd();
  }
  absl::StatusOr<VfioRegionInfo> RegionInfo(int device_fd, uint32_t index) override {
    VfioRegionInfo r;
    r.offset = uint64_t{index} << kRegionShift;
    if (index == kVfioPciConfigRegion) {
      r.size = f_.config.size();
      r.readable = r.writable = true;
    } else if (index == static_cast<uint32_t>(pci::testing::FakeVirtioPci::kBar)) {
      r.size = pci::testing::FakeVirtioPci::kBarSize;
      r.readable = r.writable = true;
      r.mmappable = f_.bar_mmappable;
    }
    return r;
  }
  absl::StatusOr<uint32_t> IrqCount(int device_fd, uint32_t index) override {
    return index == kVfioPciMsixIrq ? f_.msix_count : 0;
  }
  absl::StatusOr<void*> Mmap(int device_fd, uint64_t offset, uint64_t size) override {
    ++f_.mmaps;
    f_.bar_memory_.assign(size, 0);
    return static_cast<void*>(f_.bar_memory_.data());
  }
  void Munmap(void* addr, uint64_t size) override { ++f_.munmaps; }

  absl::Status Pread(int fd, void* buf, size_t n, uint64_t offset) override {
    const uint32_t region = static_cast<uint32_t>(offset >> kRegionShift);
    const uint64_t at = offset & ((uint64_t{1} << kRegionShift) - 1);
    if (region == kVfioPciConfigRegion) {
      if (at + n > f_.config.size()) return absl::OutOfRangeError("config read");
      std::memcpy(buf, f_.config.data() + at, n);
      return absl::OkStatus();
    }
    if (region != static_cast<uint32_t>(pci::testing::FakeVirtioPci::kBar) ||
        (n != 1 && n != 2 && n != 4) || at + n > pci::testing::FakeVirtioPci::kBarSize) {
      return absl::OutOfRangeError(absl::StrCat("read of ", n, " at ", offset));
    }
    const uint32_t v = f_.device.Read(at, static_cast<int>(n));
    std::memcpy(buf, &v, n);
    return absl::OkStatus();
  }
  absl::Status Pwrite(int fd, const void* buf, size_t n, uint64_t offset) override {
    const uint32_t region = static_cast<uint32_t>(offset >> kRegionShift);
    const uint64_t at = offset & ((uint64_t{1} << kRegionShift) - 1);
    if (region == kVfioPciConfigRegion) {
      if (at + n > f_.config.size()) return absl::OutOfRangeError("config write");
      std::memcpy(f_.config.data() + at, buf, n);
      return absl::OkStatus();
    }
    if (region != static_cast<uint32_t>(pci::testing::FakeVirtioPci::kBar) ||
        (n != 1 && n != 2 && n != 4) || at + n > pci::testing::FakeVirtioPci::kBarSize) {
      return absl::OutOfRangeError(absl::StrCat("write of ", n, " at ", offset));
    }
    uint32_t v = 0;
    std::memcpy(&v, buf, n);
    f_.device.Write(at, static_cast<int>(n), v);
    return absl::OkStatus();
  }

  absl::Status MapDma(int container_fd, const void* vaddr, uint64_t iova,
                      uint64_t size) override {
    if (f_.fail_map_dma) return absl::ResourceExhaustedError("VFIO_IOMMU_MAP_DMA: ENOMEM");
    f_.mapped.push_back({vaddr, iova, size});
    f_.map_calls.push_back({vaddr, iova, size});
    return absl::OkStatus();
  }
  absl::Status UnmapDma(int container_fd, uint64_t iova, uint64_t size) override {
    ++f_.unmap_calls;
    f_.resets_at_unmap.push_back(f_.device.resets);
    auto it = std::find_if(f_.mapped.begin(), f_.mapped.end(), [&](const DmaMapping& m) {
      return m.iova == iova && m.size == size;
    });
    if (it == f_.mapped.end()) return absl::NotFoundError("unmap of an unmapped IOVA range");
    f_.mapped.erase(it);
    return absl::OkStatus();
  }
  absl::Status SetMsix(int device_fd, absl::Span<const int> eventfds) override {
    ++f_.set_irqs_calls;
    if (eventfds.size() > f_.msix_count) return absl::InvalidArgumentError("too many vectors");
    f_.msix_fds.assign(eventfds.begin(), eventfds.end());
    return absl::OkStatus();
  }

 private:
  FakeVfio& f_;
};

FakeVfio::FakeVfio() : config(device.ConfigSpace()) {}

std::unique_ptr<VfioOps> FakeVfio::MakeOps() { return std::make_unique<Ops>(*this); }

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc
