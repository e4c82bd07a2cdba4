// VfioBus against FakeVfio (VfioOps without /dev/vfio; a simulated
// virtio-vsock function behind VFIO's region layout) and a fake sysfs tree
// that only has the function's iommu_group link.
#include "transport_vsock/driver/vfio_bus.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "transport_vsock/driver/pci/virtio_pci_caps.h"
#include "transport_vsock/driver/pci/virtio_pci_device.h"
#include "transport_vsock/driver/testing/fake_vfio.h"

namespace vrpc {
namespace vsock {
namespace {

using testing::FakeVfio;

constexpr char kAddr[] = "0000:00:05.0";

class VfioBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-vfio-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    const std::string dev = root_ + "/bus/pci/devices/" + kAddr;
    for (const std::string& d : {root_ + "/bus", root_ + "/bus/pci", root_ + "/bus/pci/devices", dev}) {
      ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
    }
    ASSERT_EQ(::symlink("../../../../kernel/iommu_groups/7", (dev + "/iommu_group").c_str()), 0);
  }
  void TearDown() override { (void)!::system(("rm -rf " + root_).c_str()); }

  VfioBusOptions Options() {
    VfioBusOptions o;
    o.pci_address = kAddr;
    o.sysfs_root = root_;
    o.bind = false;
    o.dma_bytes = 1 << 20;
    return o;
  }
  absl::StatusOr<std::unique_ptr<VfioBus>> Make() { return VfioBus::Create(Options(), vfio_.MakeOps()); }

  std::string root_;
  FakeVfio vfio_;
};

TEST_F(VfioBusTest, InitSequenceDmaMappingAndMsix) {
  {
    VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<VfioBus> bus, Make());
    EXPECT_EQ(bus->name(), "vfio:0000:00:05.0");
    EXPECT_EQ(vfio_.attached_group, 7);
    ASSERT_EQ(vfio_.msix_fds.size(), 4u);  // config + 3 queues
    EXPECT_TRUE(vfio_.map_calls.empty());

    VRPC_ASSERT_OK(bus->Reset());
    ASSERT_EQ(vfio_.mapped.size(), 1u);
    EXPECT_EQ(vfio_.mapped[0].iova, uint64_t{1} << 32);
    EXPECT_EQ(vfio_.mapped[0].size, 1u << 20);
    const uint16_t command = static_cast<uint16_t>(vfio_.config[4] | vfio_.config[5] << 8);
    EXPECT_NE(command & pci::kPciCommandMaster, 0);
    EXPECT_EQ(vfio_.device.config_msix, 0);
    EXPECT_EQ(bus->control_fds(), std::vector<int>{vfio_.msix_fds[0]});
    for (uint32_t q = 0; q < 3; ++q) EXPECT_EQ(bus->InterruptFd(q), vfio_.msix_fds[q + 1]);

    VRPC_ASSERT_OK_AND_ASSIGN(uint64_t features, bus->NegotiateFeatures(kVirtioFeatureVersion1 |
                                                                       kVirtioFeatureEventIdx));
    EXPECT_EQ(features, kVirtioFeatureVersion1 | kVirtioFeatureEventIdx);
    uint8_t cid[8];
    VRPC_ASSERT_OK(bus->ReadConfig(0, absl::MakeSpan(cid)));
    EXPECT_EQ(cid[0], 3);
    EXPECT_EQ(bus->MaxQueueSize(0), 128u);

    VRPC_ASSERT_OK_AND_ASSIGN(DmaRegion rings, bus->AllocateDma(3 * 8192));
    EXPECT_EQ(rings.device_addr, uint64_t{1} << 32);
    EXPECT_EQ(rings.host, static_cast<const uint8_t*>(vfio_.mapped[0].vaddr));
    VRPC_ASSERT_OK_AND_ASSIGN(uint8_t* host, bus->DmaMemory().Translate(rings.device_addr + 100, 4));
    EXPECT_EQ(host, rings.host + 100);
    for (uint32_t q = 0; q < 3; ++q) {
      const uint64_t base = rings.device_addr + q * 8192;
      VRPC_ASSERT_OK(bus->SetupQueue(q, {64, base, base + 1024, base + 2048}));
      EXPECT_EQ(vfio_.device.queues[q].msix, q + 1);
      EXPECT_EQ(vfio_.device.queues[q].desc, base);
      EXPECT_EQ(vfio_.device.queues[q].device, base + 2048);
      EXPECT_EQ(vfio_.device.queues[q].enable, 1);
    }
    VRPC_ASSERT_OK(bus->Start());
    EXPECT_EQ(vfio_.device.status, 0x0f);
    bus->Notify(1);
    EXPECT_EQ(vfio_.device.doorbells, std::vector<uint16_t>{1});

    // A config interrupt: nothing to do, then one that says NEEDS_RESET.
    const uint64_t one = 1;
    ASSERT_EQ(::write(vfio_.msix_fds[0], &one, sizeof(one)), 8);
    VRPC_ASSERT_OK(bus->HandleControl());
    ASSERT_EQ(::write(vfio_.msix_fds[0], &one, sizeof(one)), 8);
    vfio_.device.status |= pci::kStatusNeedsReset;
    EXPECT_EQ(bus->HandleControl().code(), absl::StatusCode::kInternal);

    // A new session: the old IOVA range is unmapped, a fresh one mapped.
    VRPC_ASSERT_OK(bus->Reset());
    EXPECT_EQ(vfio_.unmap_calls, 1);
    EXPECT_EQ(vfio_.map_calls.size(), 2u);
    EXPECT_EQ(vfio_.mapped.size(), 1u);
    EXPECT_EQ(vfio_.device.resets, 2);
    // The device was reset before its old memory left the IOMMU.
    EXPECT_EQ(vfio_.resets_at_unmap, std::vector<int>{2});
  }
  // Gone: device reset, DMA unmapped, MSI-X off.
  EXPECT_TRUE(vfio_.mapped.empty());
  EXPECT_TRUE(vfio_.msix_fds.empty());
  EXPECT_EQ(vfio_.device.resets, 3);
  EXPECT_EQ(vfio_.resets_at_unmap, (std::vector<int>{2, 3}));
}

TEST_F(VfioBusTest, DeviceWithoutVersion1IsRefused) {
  vfio_.device.device_features = kVirtioFeatureEventIdx | kVsockFeatureStream;
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<VfioBus> bus, Make());
  VRPC_ASSERT_OK(bus->Reset());
  EXPECT_EQ(bus->NegotiateFeatures(kVirtioFeatureVersion1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(VfioBusTest, BadCapabilitiesAreRefused) {
  vfio_.config[0x78 + 9] = 0x3f;  // ISR at 0x3f00 + 0x1000: past BAR 4
  EXPECT_EQ(Make().status().code(), absl::StatusCode::kDataLoss);
  vfio_.config = vfio_.device.ConfigSpace();
  vfio_.config[0x88 + 1] = 0x50;  // the capability list loops
  EXPECT_EQ(Make().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(vfio_.map_calls.empty());
}

TEST_F(VfioBusTest, OtherDevicesAreRefused) {
  vfio_.config[2] = 0x41;
  EXPECT_EQ(Make().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(VfioBusTest, TooFewMsixVectorsAreRefused) {
  vfio_.msix_count = 3;
  EXPECT_EQ(Make().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(VfioBusTest, DeviceRefusingAVectorFailsTheQueue) {
  vfio_.device.msix_vectors = 3;  // takes vectors 0..2: queue 2's vector 3 is refused
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<VfioBus> bus, Make());
  VRPC_ASSERT_OK(bus->Reset());
  VRPC_ASSERT_OK(bus->SetupQueue(1, {16, 1ull << 32, (1ull << 32) + 256, (1ull << 32) + 512}));
  EXPECT_EQ(bus->SetupQueue(2, {16, 1ull << 32, (1ull << 32) + 256, (1ull << 32) + 512}).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(VfioBusTest, GroupProblemsAreReported) {
  vfio_.group_viable = false;
  EXPECT_EQ(Make().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_EQ(::unlink((root_ + "/bus/pci/devices/" + kAddr + "/iommu_group").c_str()), 0);
  EXPECT_EQ(Make().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(VfioBusTest, FailedDmaMappingFailsTheSession) {
  vfio_.fail_map_dma = true;
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<VfioBus> bus, Make());
  EXPECT_EQ(bus->Reset().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(bus->AllocateDma(4096).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bus->InterruptFd(0), -1);
  EXPECT_EQ(vfio_.unmap_calls, 0);
}

TEST_F(VfioBusTest, MmappableBarIsMappedAndUnmapped) {
  vfio_.bar_mmappable = true;
  {
    VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<VfioBus> bus, Make());
    EXPECT_EQ(vfio_.mmaps, 1);
    EXPECT_EQ(vfio_.munmaps, 0);
  }
  EXPECT_EQ(vfio_.munmaps, 1);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
