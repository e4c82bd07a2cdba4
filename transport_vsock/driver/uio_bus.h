// File: transport_vsock/driver/uio_bus.h
//
// UioBus: the guest driver's Bus over a virtio-vsock PCI function (1af4:1053)
// driven from userspace through Linux UIO (uio_pci_generic), as DPDK does
// without an IOMMU:
//
//   - Create() binds the function to uio_pci_generic if it is not (unbinds
//     the current driver, e.g. virtio-pci; driver_override + bind, or
//     new_id), opens /dev/uioN and the sysfs config file, mmaps the BARs the
//     virtio capabilities name (sysfs resourceN) and parses the capabilities
//     (pci/virtio_pci_caps.h, checked against the BAR sizes).
//   - The virtio 1.x init sequence runs through the common config
//     (pci/virtio_pci_device.h); notifications are doorbell writes.
//   - DMA memory: hugepages with known physical addresses
//     (pci/physical_memory.h); device address == physical address, so the
//     guest must have no IOMMU in front of the device (and this process
//     needs root for /proc/self/pagemap and sysfs).
//   - Interrupts: INTx, one line for all queues. uio_pci_generic masks it
//     (PCI command INTx-disable) on each interrupt and counts it on the UIO
//     fd, which is this bus's control fd. HandleControl() reads the count,
//     reads the ISR (which acks the device and lowers the line), unmasks
//     INTx through the config file, and on a queue interrupt signals every
//     queue's eventfd (InterruptFd): INTx cannot say which queue it was, so
//     the driver looks at each. A config interrupt with NEEDS_RESET set, or
//     a function reading as all ones, is reported as an error.
//
// Each Reset() resets the device and starts a session with a fresh DMA pool
// (the old one stays mapped while received Slices hold it, so a pool's
// worth of hugepages may be needed per session still referenced).
//
// The device is untrusted: capabilities, sizes, offsets and every register
// read are checked (pci/); nothing CHECKs on device input.
//
// Not thread-safe (Bus). Setup calls block for at most reset_timeout.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_UIO_BUS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_UIO_BUS_H_

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
#include "transport_vsock/driver/pci/physical_memory.h"
#include "transport_vsock/driver/pci/registers.h"
#include "transport_vsock/driver/pci/sysfs.h"
#include "transport_vsock/driver/pci/virtio_pci_device.h"

namespace vrpc {
namespace vsock {

struct UioBusOptions {
  // The PCI function, "DDDD:BB:DD.F" (as in /sys/bus/pci/devices).
  std::string pci_address;
  // Where sysfs and /dev are (tests point these at a fake tree).
  std::string sysfs_root = "/sys";
  std::string dev_root = "/dev";
  // Bind the function to uio_pci_generic when it is not bound to it
  // (unbinding its current driver). Off by default: rebinding the wrong
  // function takes a device away from the machine (on vrpc's development
  // hosts 0000:00:04.0 is the host's own virtio-vsock device).
  bool bind = false;
  // DMA memory per session, in pages of dma_page_size (a hugepage size;
  // 4096 uses normal pages, usable only where they happen to be physically
  // contiguous).
  size_t dma_bytes = 32 << 20;
  size_t dma_page_size = 2 << 20;
  // Physical addresses of DMA pages; null: /proc/self/pagemap.
  pci::VirtToPhys virt_to_phys;
  // Largest ring offered to the driver (the device may allow less).
  uint32_t max_queue_size = 1024;
  // Queues the driver sets up (virtio-vsock: rx, tx, event).
  uint32_t num_queues = 3;
  absl::Duration reset_timeout = absl::Seconds(1);
};

class UioBus final : public Bus {
 public:
  // Binds (if asked), opens and maps the function and parses its
  // capabilities; does not reset the device (Reset does). kInvalidArgument
  // for bad options; kFailedPrecondition if the function is no virtio-vsock
  // device or uio_pci_generic is not loaded; kDataLoss for malformed
  // capabilities; errno codes from sysfs and /dev.
  static absl::StatusOr<std::unique_ptr<UioBus>> Create(UioBusOptions options);
  ~UioBus() override;

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

  // The /dev/uioN path in use (tests, diagnostics).
  const std::string& uio_path() const { return uio_path_; }

 private:
  struct Session;
  explicit UioBus(UioBusOptions options, pci::PciSysfs sysfs);
  absl::Status Open();
  absl::Status MapBars(const pci::VirtioPciCaps& caps,
                       const std::array<uint64_t, pci::kNumBars>& sizes);
  // Sets memory + bus master in the PCI command register and (un)masks INTx.
  absl::Status WriteCommand(bool intx_enabled);
  absl::Status Check() const;

  const UioBusOptions options_;
  const pci::PciSysfs sysfs_;
  std::string uio_path_;
  UniqueFd uio_fd_;
  UniqueFd config_fd_;
  std::array<std::unique_ptr<pci::RegisterIo>, pci::kNumBars> bars_;
  std::unique_ptr<pci::VirtioPciDevice> device_;
  std::unique_ptr<Session> session_;
  // Sessions whose device did not reset: their DMA memory stays mapped
  // (and out of the kernel's hands) until this bus goes.
  std::vector<std::unique_ptr<Session>> quarantined_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_UIO_BUS_H_
