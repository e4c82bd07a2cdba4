#include "transport_vsock/driver/pci/virtio_pci_device.h"

#include <vector>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "transport_vsock/driver/pci/testing/fake_virtio_pci.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace {

using testing::FakeVirtioPci;

class VirtioPciDeviceTest : public ::testing::Test {
 protected:
  std::unique_ptr<VirtioPciDevice> Make(const std::vector<uint8_t>& config) {
    std::array<uint64_t, kNumBars> sizes{};
    sizes[FakeVirtioPci::kBar] = FakeVirtioPci::kBarSize;
    absl::StatusOr<VirtioPciCaps> caps = ParseVirtioPciCaps(config, sizes);
    EXPECT_THAT(caps, IsOk());
    std::array<RegisterIo*, kNumBars> bars{};
    bars[FakeVirtioPci::kBar] = &fake_;
    absl::StatusOr<std::unique_ptr<VirtioPciDevice>> d =
        VirtioPciDevice::Create(*caps, bars, absl::Milliseconds(200));
    EXPECT_THAT(d, IsOk());
    return d.ok() ? *std::move(d) : nullptr;
  }
  std::unique_ptr<VirtioPciDevice> Make() { return Make(fake_.ConfigSpace()); }

  FakeVirtioPci fake_;
};

TEST_F(VirtioPciDeviceTest, InitSequenceProgramsEveryQueue) {
  fake_.reset_reads = 3;  // the device takes a few reads to finish resetting
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  VRPC_ASSERT_OK_AND_ASSIGN(uint64_t accepted,
                            d->NegotiateFeatures(kVirtioFeatureVersion1 | kVirtioFeatureEventIdx |
                                                 kVirtioFeatureInOrder));
  EXPECT_EQ(accepted, kVirtioFeatureVersion1 | kVirtioFeatureEventIdx);
  EXPECT_EQ(fake_.driver_features, accepted);
  uint8_t cid[8];
  VRPC_ASSERT_OK(d->ReadConfig(0, absl::MakeSpan(cid)));
  EXPECT_EQ(cid[0], 3);
  EXPECT_EQ(d->num_queues(), 3);
  EXPECT_EQ(d->QueueMaxSize(1), 128);
  for (uint32_t q = 0; q < 3; ++q) {
    const uint64_t base = 0x1'0000'0000 + q * 0x10000;
    VRPC_ASSERT_OK(d->SetupQueue(q, {64, base, base + 0x400, base + 0x800}));
  }
  VRPC_ASSERT_OK(d->Start());
  EXPECT_EQ(fake_.status, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk |
                              kStatusDriverOk);
  EXPECT_EQ(fake_.status_writes,
            (std::vector<uint8_t>{0, 1, 3, 11, 15}));
  for (uint32_t q = 0; q < 3; ++q) {
    const FakeVirtioPci::Queue& fq = fake_.queues[q];
    EXPECT_EQ(fq.size, 64);
    EXPECT_EQ(fq.enable, 1);
    EXPECT_EQ(fq.msix, kMsixNoVector);
    EXPECT_EQ(fq.desc, 0x1'0000'0000u + q * 0x10000);
    EXPECT_EQ(fq.driver, fq.desc + 0x400);
    EXPECT_EQ(fq.device, fq.desc + 0x800);
  }
  d->Notify(1);
  d->Notify(2);
  d->Notify(7);  // never set up: nothing
  EXPECT_EQ(fake_.doorbells, (std::vector<uint16_t>{1, 2}));
  fake_.isr = kIsrQueue | kIsrConfig;
  EXPECT_EQ(d->ReadIsr(), kIsrQueue | kIsrConfig);
  EXPECT_EQ(d->ReadIsr(), 0);  // read clears
}

TEST_F(VirtioPciDeviceTest, ResetClearsTheDeviceAndTheDoorbells) {
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  VRPC_ASSERT_OK(d->NegotiateFeatures(kVirtioFeatureVersion1).status());
  VRPC_ASSERT_OK(d->SetupQueue(0, {16, 0x1000, 0x2000, 0x3000}));
  VRPC_ASSERT_OK(d->Reset());
  EXPECT_EQ(fake_.resets, 2);
  EXPECT_EQ(fake_.queues[0].enable, 0);
  d->Notify(0);
  EXPECT_TRUE(fake_.doorbells.empty());
}

TEST_F(VirtioPciDeviceTest, DeviceThatNeverResetsTimesOut) {
  fake_.reset_reads = 1 << 30;
  auto d = Make();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->Reset().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(VirtioPciDeviceTest, NoVersion1IsRefused) {
  fake_.device_features = kVirtioFeatureEventIdx | 1;  // a legacy-only device
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  EXPECT_EQ(d->NegotiateFeatures(kVirtioFeatureVersion1 | kVirtioFeatureEventIdx).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(fake_.status & kStatusFailed, 0);
}

TEST_F(VirtioPciDeviceTest, FeaturesOkNotStickingIsRefused) {
  fake_.accept_features_ok = false;
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  EXPECT_EQ(d->NegotiateFeatures(kVirtioFeatureVersion1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(VirtioPciDeviceTest, QueueSizesTheDeviceDoesNotTakeAreRefused) {
  fake_.queues[0].max_size = 32;
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  EXPECT_EQ(d->SetupQueue(0, {64, 0x1000, 0x2000, 0x3000}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d->SetupQueue(0, {24, 0x1000, 0x2000, 0x3000}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d->SetupQueue(5, {16, 0x1000, 0x2000, 0x3000}).code(),
            absl::StatusCode::kInvalidArgument);
  fake_.queues[1].max_size = 0;
  EXPECT_EQ(d->SetupQueue(1, {16, 0x1000, 0x2000, 0x3000}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VirtioPciDeviceTest, DoorbellOutsideTheNotifyStructureIsRefused) {
  fake_.queues[2].notify_off = 0x400;  // * 4 = 0x1000: one past the structure
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  EXPECT_EQ(d->SetupQueue(2, {16, 0x1000, 0x2000, 0x3000}).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(fake_.queues[2].enable, 0);
  d->Notify(2);
  EXPECT_TRUE(fake_.doorbells.empty());
}

TEST_F(VirtioPciDeviceTest, MsixVectorsAreProgrammedAndRefusalsReported) {
  auto d = Make();
  ASSERT_NE(d, nullptr);
  VRPC_ASSERT_OK(d->Reset());
  VRPC_ASSERT_OK(d->SetConfigVector(0));
  VRPC_ASSERT_OK(d->SetupQueue(0, {16, 0x1000, 0x2000, 0x3000}, 1));
  EXPECT_EQ(fake_.config_msix, 0);
  EXPECT_EQ(fake_.queues[0].msix, 1);
  EXPECT_EQ(d->SetupQueue(1, {16, 0x1000, 0x2000, 0x3000}, 9).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(d->SetConfigVector(9).code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(VirtioPciDeviceTest, ConfigReadsStayInsideTheDeviceStructure) {
  auto d = Make();
  ASSERT_NE(d, nullptr);
  uint8_t buf[8];
  EXPECT_EQ(d->ReadConfig(0x1000 - 4, absl::MakeSpan(buf)).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(d->ReadConfig(0xffffffff, absl::MakeSpan(buf)).code(), absl::StatusCode::kOutOfRange);
}

TEST_F(VirtioPciDeviceTest, StructuresOutsideTheMappedWindowAreRefused) {
  std::array<RegisterIo*, kNumBars> bars{};
  VirtioPciCaps caps;
  caps.common = {4, 0, 0x1000};
  caps.notify = {4, 0x3000, 0x1000};
  caps.isr = {4, 0x1000, 1};
  EXPECT_EQ(VirtioPciDevice::Create(caps, bars).status().code(), absl::StatusCode::kDataLoss);
  bars[4] = &fake_;
  caps.isr = {4, 0x4000, 1};
  EXPECT_EQ(VirtioPciDevice::Create(caps, bars).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
