// File: transport_vsock/driver/testing/fake_vfio.h
//
// FakeVfio: VfioOps without /dev/vfio, for VfioBus tests. The "device" is a
// pci::testing::FakeVirtioPci (config space and BAR 4 with QEMU-like
// register semantics) reached through the VFIO region layout (region i at
// offset i << 40; BAR 4 not mmappable unless bar_mmappable, in which case
// the mapping is plain memory). It records the DMA mappings, the MSI-X
// eventfds and the config-space writes, and can be told to fail.
//
// The fake must outlive the bus (tests keep a pointer to it after handing
// the bus a FakeVfio::Ops that forwards to it). Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_FAKE_VFIO_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_FAKE_VFIO_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "transport_vsock/driver/pci/testing/fake_virtio_pci.h"
#include "transport_vsock/driver/vfio_ops.h"

namespace vrpc {
namespace vsock {
namespace testing {

class FakeVfio {
 public:
  struct DmaMapping {
    const void* vaddr;
    uint64_t iova;
    uint64_t size;
    bool operator==(const DmaMapping& o) const {
      return vaddr == o.vaddr && iova == o.iova && size == o.size;
    }
  };

  FakeVfio();
  // A VfioOps that forwards to this fake.
  std::unique_ptr<VfioOps> MakeOps();

  // The device.
  pci::testing::FakeVirtioPci device;
  std::vector<uint8_t> config;  // config space (starts as device.ConfigSpace())

  // Knobs.
  bool group_viable = true;
  bool bar_mmappable = false;
  uint32_t msix_count = 4;
  bool fail_map_dma = false;

  // Recorded.
  std::vector<DmaMapping> mapped;     // currently mapped
  std::vector<DmaMapping> map_calls;  // every MAP_DMA
  int unmap_calls = 0;
  std::vector<int> resets_at_unmap;   // device.resets when each UNMAP_DMA came
  std::vector<int> msix_fds;          // last SET_IRQS (empty: disabled)
  int set_irqs_calls = 0;
  int attached_group = -1;
  int opened_group = -1;
  int mmaps = 0, munmaps = 0;

 private:
  class Ops;
  std::vector<uint8_t> bar_memory_;  // what an mmap of BAR 4 returns
};

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_TESTING_FAKE_VFIO_H_
