// UioBus against a fake sysfs tree in a temp dir: config space and
// "resource" as plain files, BAR 4 as a plain file mmapped like sysfs
// resource4 (plain memory: no device semantics beyond what the test puts
// there), /dev/uio0 as a FIFO, and fake physical addresses. What the bus
// wrote (bind files, PCI command register, common config, doorbells) is
// read back from the files.
#include "transport_vsock/driver/uio_bus.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gtest/gtest.h"
#include "transport_vsock/driver/pci/sysfs.h"
#include "transport_vsock/driver/pci/testing/fake_virtio_pci.h"
#include "transport_vsock/driver/pci/virtio_pci_caps.h"
#include "transport_vsock/driver/pci/virtio_pci_device.h"

namespace vrpc {
namespace vsock {
namespace {

using pci::testing::FakeVirtioPci;
namespace common = pci::common;

constexpr char kAddr[] = "0000:00:04.0";
constexpr uint64_t kPhysBase = 0x4000'0000;

void WriteAt(const std::string& path, uint64_t offset, uint64_t value, int width) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << path;
  ASSERT_EQ(::pwrite(fd.get(), &value, static_cast<size_t>(width), static_cast<off_t>(offset)),
            width);
}

uint64_t ReadAt(const std::string& path, uint64_t offset, int width) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  uint64_t value = 0;
  EXPECT_EQ(::pread(fd.get(), &value, static_cast<size_t>(width), static_cast<off_t>(offset)),
            width);
  return value;
}

void Touch(const std::string& path, const std::string& contents = "") {
  ASSERT_TRUE(pci::WriteSmallFile(path, contents).ok() || [&] {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    return fd.valid() && ::write(fd.get(), contents.data(), contents.size()) ==
                             static_cast<ssize_t>(contents.size());
  }()) << path;
}

class UioBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-uio-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dev_ = root_ + "/bus/pci/devices/" + kAddr;
    for (const std::string& d :
         {root_ + "/bus", root_ + "/bus/pci", root_ + "/bus/pci/devices", dev_, dev_ + "/uio",
          dev_ + "/uio/uio0", root_ + "/bus/pci/drivers", root_ + "/bus/pci/drivers/virtio-pci",
          root_ + "/bus/pci/drivers/uio_pci_generic", root_ + "/dev"}) {
      ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
    }
    ASSERT_EQ(::symlink("../../drivers/virtio-pci", (dev_ + "/driver").c_str()), 0);
    Touch(root_ + "/bus/pci/drivers/virtio-pci/unbind");
    Touch(root_ + "/bus/pci/drivers/uio_pci_generic/bind");
    Touch(root_ + "/bus/pci/drivers/uio_pci_generic/new_id");
    Touch(dev_ + "/driver_override");
    config_ = fake_.ConfigSpace();
    config_[4] = 0;
    config_[5] = 0x04;  // INTx masked, bus master off
    WriteConfig();
    std::string resource;
    for (int i = 0; i < 6; ++i) {
      resource += i == FakeVirtioPci::kBar
                      ? "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c\n"
                      : "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    }
    resource += "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    Touch(dev_ + "/resource", resource);
    bar_ = dev_ + "/resource4";
    Touch(bar_, std::string(FakeVirtioPci::kBarSize, '\0'));
    // Registers a real device would show.
    WriteAt(bar_, common::kDeviceFeature, 1, 4);  // both halves: STREAM | VERSION_1
    WriteAt(bar_, common::kNumQueues, 3, 2);
    WriteAt(bar_, common::kQueueSize, 128, 2);
    WriteAt(bar_, FakeVirtioPci::kDeviceOffset, 3, 8);  // guest_cid
    ASSERT_EQ(::mkfifo((root_ + "/dev/uio0").c_str(), 0600), 0);
  }
  void TearDown() override { (void)!::system(("rm -rf " + root_).c_str()); }

  void WriteConfig() {
    Touch(dev_ + "/config", std::string(config_.begin(), config_.end()));
  }

  UioBusOptions Options() {
    UioBusOptions o;
    o.pci_address = kAddr;
    o.sysfs_root = root_;
    o.dev_root = root_ + "/dev";
    o.bind = true;  // the fake tree's "functions" only
    o.dma_bytes = 256 << 10;
    o.dma_page_size = 4096;
    // Pages come back in reverse physical order; one contiguous run.
    o.virt_to_phys = [n = 0](const void*) mutable -> absl::StatusOr<uint64_t> {
      return kPhysBase + (63 - n++) * uint64_t{4096};
    };
    return o;
  }

  std::string root_, dev_, bar_;
  FakeVirtioPci fake_;
  std::vector<uint8_t> config_;
};

TEST_F(UioBusTest, BindsInitializesNotifiesAndDemultiplexesInterrupts) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<UioBus> bus, UioBus::Create(Options()));
  EXPECT_EQ(bus->name(), "uio:0000:00:04.0");
  EXPECT_EQ(bus->uio_path(), root_ + "/dev/uio0");
  // Unbound from virtio-pci, bound to uio_pci_generic through driver_override.
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/virtio-pci/unbind"), kAddr);
  EXPECT_EQ(*pci::ReadSmallFile(dev_ + "/driver_override"), "uio_pci_generic");
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/uio_pci_generic/bind"), kAddr);

  VRPC_ASSERT_OK(bus->Reset());
  const uint64_t command = ReadAt(dev_ + "/config", pci::kPciCommand, 2);
  EXPECT_EQ(command & pci::kPciCommandIntxDisable, 0u);
  EXPECT_NE(command & pci::kPciCommandMaster, 0u);
  EXPECT_NE(command & pci::kPciCommandMemory, 0u);

  VRPC_ASSERT_OK_AND_ASSIGN(uint64_t features,
                            bus->NegotiateFeatures(kVirtioFeatureVersion1 | kVirtioFeatureEventIdx));
  EXPECT_EQ(features, kVirtioFeatureVersion1);
  uint8_t cid[8];
  VRPC_ASSERT_OK(bus->ReadConfig(0, absl::MakeSpan(cid)));
  EXPECT_EQ(cid[0], 3);
  EXPECT_EQ(bus->MaxQueueSize(0), 128u);
  EXPECT_EQ(bus->MaxQueueSize(3), 0u);

  VRPC_ASSERT_OK_AND_ASSIGN(DmaRegion rings, bus->AllocateDma(3 * 8192));
  EXPECT_GE(rings.device_addr, kPhysBase);
  EXPECT_LE(rings.device_addr + rings.size, kPhysBase + (256 << 10));
  VRPC_ASSERT_OK_AND_ASSIGN(uint8_t* host, bus->DmaMemory().Translate(rings.device_addr + 8192, 16));
  EXPECT_EQ(host, rings.host + 8192);
  for (uint32_t q = 0; q < 3; ++q) {
    const uint64_t base = rings.device_addr + q * 8192;
    VRPC_ASSERT_OK(bus->SetupQueue(q, {64, base, base + 1024, base + 2048}));
  }
  VRPC_ASSERT_OK(bus->Start());
  EXPECT_EQ(ReadAt(bar_, common::kDeviceStatus, 1),
            uint64_t{pci::kStatusAcknowledge | pci::kStatusDriver | pci::kStatusFeaturesOk |
                     pci::kStatusDriverOk});
  EXPECT_EQ(ReadAt(bar_, common::kQueueSize, 2), 64u);
  EXPECT_EQ(ReadAt(bar_, common::kQueueDesc, 8), rings.device_addr + 2 * 8192);
  EXPECT_EQ(ReadAt(bar_, common::kQueueDevice, 8), rings.device_addr + 2 * 8192 + 2048);
  EXPECT_EQ(ReadAt(bar_, common::kQueueEnable, 2), 1u);
  EXPECT_EQ(ReadAt(bar_, common::kQueueMsixVector, 2), 0xffffu);

  bus->Notify(1);
  EXPECT_EQ(ReadAt(bar_, FakeVirtioPci::kNotifyOffset, 2), 1u);

  // One INTx for all queues: every queue's eventfd fires, INTx is unmasked.
  const std::vector<int> control = bus->control_fds();
  ASSERT_EQ(control.size(), 1u);
  UniqueFd irq(::open((root_ + "/dev/uio0").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(irq.valid());
  const uint32_t count = 1;
  ASSERT_EQ(::write(irq.get(), &count, sizeof(count)), 4);
  WriteAt(bar_, FakeVirtioPci::kIsrOffset, pci::kIsrQueue, 1);
  WriteAt(dev_ + "/config", pci::kPciCommand, command | pci::kPciCommandIntxDisable, 2);
  VRPC_ASSERT_OK(bus->HandleControl());
  EXPECT_EQ(ReadAt(dev_ + "/config", pci::kPciCommand, 2) & pci::kPciCommandIntxDisable, 0u);
  for (uint32_t q = 0; q < 3; ++q) {
    uint64_t n = 0;
    EXPECT_EQ(::read(bus->InterruptFd(q), &n, sizeof(n)), 8) << q;
    EXPECT_EQ(n, 1u);
  }
  // Nothing on the UIO fd: a spurious wake-up, no queue signalled.
  VRPC_ASSERT_OK(bus->HandleControl());
  uint64_t n = 0;
  EXPECT_EQ(::read(bus->InterruptFd(0), &n, sizeof(n)), -1);
  // A config interrupt that says NEEDS_RESET ends the session.
  ASSERT_EQ(::write(irq.get(), &count, sizeof(count)), 4);
  WriteAt(bar_, FakeVirtioPci::kIsrOffset, pci::kIsrConfig, 1);
  WriteAt(bar_, common::kDeviceStatus, 0x4f, 1);
  EXPECT_EQ(bus->HandleControl().code(), absl::StatusCode::kInternal);
}

TEST_F(UioBusTest, AlreadyBoundFunctionIsNotRebound) {
  ASSERT_EQ(::unlink((dev_ + "/driver").c_str()), 0);
  ASSERT_EQ(::symlink("../../drivers/uio_pci_generic", (dev_ + "/driver").c_str()), 0);
  VRPC_ASSERT_OK(UioBus::Create(Options()).status());
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/virtio-pci/unbind"), "");
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/uio_pci_generic/bind"), "");
}

TEST_F(UioBusTest, WithoutDriverOverrideNewIdIsUsed) {
  ASSERT_EQ(::unlink((dev_ + "/driver_override").c_str()), 0);
  VRPC_ASSERT_OK(UioBus::Create(Options()).status());
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/uio_pci_generic/new_id"), "1af4 1053");
}

TEST_F(UioBusTest, OtherDevicesAreRefused) {
  config_[2] = 0x41;  // 1af4:1041, virtio-net
  WriteConfig();
  EXPECT_EQ(UioBus::Create(Options()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/uio_pci_generic/bind"), "");
}

TEST_F(UioBusTest, CapabilityOutsideTheBarIsRefusedBeforeBinding) {
  config_[0x60 + 9] = 0x3f;  // notify at 0x3f00 + 0x1000 > 16 KiB
  WriteConfig();
  EXPECT_EQ(UioBus::Create(Options()).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*pci::ReadSmallFile(root_ + "/bus/pci/drivers/uio_pci_generic/bind"), "");
}

TEST_F(UioBusTest, MissingUioDriverIsReported) {
  ASSERT_EQ(::system(("rm -rf " + root_ + "/bus/pci/drivers/uio_pci_generic").c_str()), 0);
  EXPECT_EQ(UioBus::Create(Options()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UioBusTest, MissingUioDeviceIsReported) {
  ASSERT_EQ(::rmdir((dev_ + "/uio/uio0").c_str()), 0);
  UioBusOptions o = Options();
  o.bind = false;
  EXPECT_EQ(UioBus::Create(o).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(UioBusTest, TooFewQueuesAndNoVersion1AreRefused) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<UioBus> bus, UioBus::Create(Options()));
  WriteAt(bar_, common::kNumQueues, 2, 2);
  EXPECT_EQ(bus->Reset().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bus->AllocateDma(4096).status().code(), absl::StatusCode::kFailedPrecondition);
  WriteAt(bar_, common::kNumQueues, 3, 2);
  WriteAt(bar_, common::kDeviceFeature, 0x20000000, 4);  // EVENT_IDX only (and bit 61)
  VRPC_ASSERT_OK(bus->Reset());
  EXPECT_EQ(bus->NegotiateFeatures(kVirtioFeatureVersion1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(UioBusTest, DmaComesFromPhysicallyContiguousRunsOnly) {
  UioBusOptions o = Options();
  // Two runs of 32 pages with a hole between them.
  o.virt_to_phys = [n = 0](const void*) mutable -> absl::StatusOr<uint64_t> {
    const int i = n++;
    return (i < 32 ? kPhysBase : 2 * kPhysBase) + (i % 32) * uint64_t{4096};
  };
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<UioBus> bus, UioBus::Create(o));
  VRPC_ASSERT_OK(bus->Reset());
  EXPECT_EQ(bus->AllocateDma(33 * 4096).status().code(), absl::StatusCode::kResourceExhausted);
  VRPC_ASSERT_OK_AND_ASSIGN(DmaRegion a, bus->AllocateDma(20 * 4096));
  VRPC_ASSERT_OK_AND_ASSIGN(DmaRegion b, bus->AllocateDma(20 * 4096));  // the other run
  EXPECT_EQ(a.device_addr, kPhysBase);
  EXPECT_EQ(b.device_addr, 2 * kPhysBase);
  std::memset(b.host, 0x5a, b.size);
  VRPC_ASSERT_OK_AND_ASSIGN(uint8_t* p, bus->DmaMemory().Translate(2 * kPhysBase + 4096, 1));
  EXPECT_EQ(*p, 0x5a);
  EXPECT_FALSE(bus->DmaMemory().Translate(kPhysBase + 32 * 4096, 1).ok());  // the hole
  // A page without a physical address (not root) fails the session.
  o.virt_to_phys = [](const void*) -> absl::StatusOr<uint64_t> {
    return absl::PermissionDeniedError("not root");
  };
  VRPC_ASSERT_OK_AND_ASSIGN(bus, UioBus::Create(o));
  EXPECT_EQ(bus->Reset().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
