#include "transport_vsock/driver/pci/virtio_pci_caps.h"

#include <vector>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "transport_vsock/driver/pci/testing/fake_virtio_pci.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace {

using testing::FakeVirtioPci;

std::array<uint64_t, kNumBars> Bars() {
  std::array<uint64_t, kNumBars> b{};
  b[FakeVirtioPci::kBar] = FakeVirtioPci::kBarSize;
  return b;
}

TEST(VirtioPciCapsTest, ParsesTheFourStructuresAndMsix) {
  FakeVirtioPci fake;
  const std::vector<uint8_t> config = fake.ConfigSpace();
  VRPC_ASSERT_OK_AND_ASSIGN(VirtioPciCaps caps, ParseVirtioPciCaps(config, Bars()));
  EXPECT_EQ(caps.common.bar, 4);
  EXPECT_EQ(caps.common.offset, 0u);
  EXPECT_EQ(caps.notify.offset, 0x3000u);
  EXPECT_EQ(caps.notify_off_multiplier, 4u);
  EXPECT_EQ(caps.isr.offset, 0x1000u);
  ASSERT_TRUE(caps.has_device_cfg);
  EXPECT_EQ(caps.device.offset, 0x2000u);
  ASSERT_TRUE(caps.has_msix);
  EXPECT_EQ(caps.msix_vectors, 4);
  VRPC_ASSERT_OK_AND_ASSIGN(auto ids, PciIds(config));
  EXPECT_EQ(ids.first, kVirtioVendorId);
  EXPECT_EQ(ids.second, kVirtioVsockDeviceId);
}

TEST(VirtioPciCapsTest, NoCapabilityListIsNotVirtio) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[6] = 0;
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(VirtioPciCapsTest, MissingNotifyIsNotVirtio) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x60 + 3] = 7;  // notify becomes an unknown type
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(VirtioPciCapsTest, LoopingListIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x88 + 1] = 0x50;  // device -> common -> ... forever
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, PointerIntoTheHeaderIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x34] = 0x10;
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, CapabilityRunningPastConfigSpaceIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x88 + 2] = 0xff;  // cap_len
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, StructureOutsideItsBarIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x60 + 8 + 1] = 0x3f;  // notify offset 0x3f00, length 0x1000: past 16 KiB
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
  // Offset + length wrapping 32 bits.
  config = FakeVirtioPci().ConfigSpace();
  for (int i = 0; i < 4; ++i) config[0x50 + 12 + i] = 0xff;
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, StructureInAnAbsentBarIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x78 + 4] = 2;  // ISR in BAR 2, which has size 0
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, ShortCommonConfigIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x50 + 12] = 0x20;
  config[0x50 + 13] = 0;
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, TruncatedNotifyCapIsRejected) {
  std::vector<uint8_t> config = FakeVirtioPci().ConfigSpace();
  config[0x60 + 2] = 16;
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VirtioPciCapsTest, ShortConfigSpaceIsRejected) {
  std::vector<uint8_t> config(64, 0);
  EXPECT_EQ(ParseVirtioPciCaps(config, Bars()).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(PciIds(absl::Span<const uint8_t>(config.data(), 2)).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
