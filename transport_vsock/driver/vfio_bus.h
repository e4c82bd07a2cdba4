// File: transport_vsock/driver/vfio_bus.h
//
// VfioBus: the guest driver's Bus over a virtio-vsock PCI function (1af4:1053)
// owned through Linux VFIO, with an IOMMU between it and memory:
//
//   - Create() binds the function to vfio-pci if asked, opens the container
//     (/dev/vfio/vfio) and the function's IOMMU group (/dev/vfio/N, N from
//     sysfs iommu_group), attaches the group with a type1 IOMMU, gets the
//     device fd, reads the config space through the VFIO config region,
//     parses the virtio capabilities (pci/, checked against the region
//     sizes), and maps the BARs they name (mmap where VFIO allows it,
//     pread/pwrite otherwise).
//   - DMA memory: a memfd per session, mapped for the device with
//     VFIO_IOMMU_MAP_DMA at IOVAs this bus chooses (iova_base upward) and
//     unmapped when the session ends, so an old session's memory is out of
//     the device's reach even while received Slices still hold it.
//   - Interrupts: MSI-X, one eventfd per queue (vector 1 + queue) and one
//     for config changes (vector 0), given to VFIO_DEVICE_SET_IRQS and
//     programmed into queue_msix_vector / config_msix_vector (a device that
//     refuses a vector fails the setup). InterruptFd(q) is the queue's
//     eventfd; the config eventfd is the control fd.
//
// All VFIO calls go through VfioOps (vfio_ops.h), faked in tests.
//
// The device is untrusted (pci/): capabilities, sizes and every register
// read are checked; nothing CHECKs on device input.
//
// Not thread-safe (Bus). Setup calls block for at most reset_timeout.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_VFIO_BUS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_VFIO_BUS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/driver/bus.h"
#include "transport_vsock/driver/pci/registers.h"
#include "transport_vsock/driver/pci/sysfs.h"
#include "transport_vsock/driver/pci/virtio_pci_device.h"
#include "transport_vsock/driver/vfio_ops.h"

namespace vrpc {
namespace vsock {

struct VfioBusOptions {
  // The PCI function, "DDDD:BB:DD.F".
  std::string pci_address;
  // Where sysfs is (for iommu_group and binding).
  std::string sysfs_root = "/sys";
  // Bind the function to vfio-pci when it is not bound to it (off by
  // default, as for UioBusOptions::bind).
  bool bind = false;
  // DMA memory per session, and the first IOVA it is mapped at.
  size_t dma_bytes = 32 << 20;
  uint64_t iova_base = uint64_t{1} << 32;
  uint32_t max_queue_size = 1024;
  uint32_t num_queues = 3;
  absl::Duration reset_timeout = absl::Seconds(1);
};

class VfioBus final : public Bus {
 public:
  // |ops| null: the real VFIO (MakeLinuxVfioOps()). kInvalidArgument for
  // bad options; kFailedPrecondition if the function is no virtio-vsock
  // device, has too few MSI-X vectors, or its group is not viable;
  // kNotFound without an IOMMU group; kDataLoss for malformed capabilities.
  static absl::StatusOr<std::unique_ptr<VfioBus>> Create(VfioBusOptions options,
                                                         std::unique_ptr<VfioOps> ops = nullptr);
  ~VfioBus() override;

  std::string name() const override;
  absl::Status Reset() override;
  absl::StatusOr<uint64_t> NegotiateFeatures(uint64_t wanted) override;
  absl::Status ReadConfig(uint32_t offset, absl::Span<uint8_t> out) override;
  absl::StatusOr<DmaRegion> AllocateDma(size_t size) override;
  virtqueue::GuestMemory DmaMemory() const override;
  uint32_t MaxQueueSize(uint32_t index) const override;
  absl::Status SetupQueue(uint32_t index, const QueueLayout& layout) override;
  absl::Status Start() override;
  void Notify(uint32_t index) override;
  int InterruptFd(uint32_t index) const override;
  std::vector<int> control_fds() const override;
  absl::Status HandleControl() override;

 private:
  struct Session;
  VfioBus(VfioBusOptions options, std::unique_ptr<VfioOps> ops);
  absl::Status Open();
  absl::Status MapBars(const pci::VirtioPciCaps& caps);
  absl::Status SetupInterrupts();
  absl::Status EnableBusMaster();
  absl::Status Check() const;

  const VfioBusOptions options_;
  std::unique_ptr<VfioOps> ops_;  // outlives everything below
  UniqueFd container_, group_, device_fd_;
  std::array<VfioRegionInfo, pci::kNumBars> regions_{};
  uint64_t config_offset_ = 0;
  std::array<std::unique_ptr<pci::RegisterIo>, pci::kNumBars> bars_;
  std::unique_ptr<pci::VirtioPciDevice> device_;
  UniqueFd config_irq_;
  std::vector<UniqueFd> queue_irqs_;
  std::unique_ptr<Session> session_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_VFIO_BUS_H_
