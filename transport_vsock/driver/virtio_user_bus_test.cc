// VirtioUserBus against vrpc's vhost-user Backend (with a RecordingDevice)
// served on a thread behind a real socket path.
#include "transport_vsock/driver/virtio_user_bus.h"

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/listener.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/recording_device.h"
#include "transport_vsock/vhost_user/testing/resources.h"

namespace vrpc {
namespace vsock {
namespace {

using vhost_user::testing::CountOpenFds;
using vhost_user::testing::RecordingDevice;

// Serves frontends one at a time on a thread; the test looks at the
// backend and device only after Stop().
class BackendServer {
 public:
  explicit BackendServer(const std::string& path) : backend_(&device_) {
    auto listener = vhost_user::Listener::Create(path);
    VRPC_CHECK(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
    thread_ = std::thread([this] { Run(); });
  }
  ~BackendServer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  vhost_user::Backend& backend() { return backend_; }
  RecordingDevice& device() { return device_; }
  int sessions() const { return sessions_; }

 private:
  void Run() {
    while (!stop_) {
      pollfd pfd[2] = {{listener_->fd(), POLLIN, 0}, {backend_.socket_fd(), POLLIN, 0}};
      if (::poll(pfd, backend_.attached() ? 2 : 1, 5) <= 0) continue;
      if ((pfd[0].revents & POLLIN) != 0) {
        auto fd = listener_->Accept();
        if (fd.ok()) {
          backend_.Disconnect();
          VRPC_CHECK(backend_.Attach(*std::move(fd)).ok());
          ++sessions_;
        }
      }
      if (backend_.attached() && (pfd[1].revents & (POLLIN | POLLHUP)) != 0 &&
          !backend_.HandleReadable().ok()) {
        backend_.Disconnect();
      }
    }
  }

  RecordingDevice device_;
  vhost_user::Backend backend_;
  std::unique_ptr<vhost_user::Listener> listener_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sessions_{0};
  std::thread thread_;
};

class VirtioUserBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-vub.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/vhost.sock";
    auto bus = VirtioUserBus::Create({path_, 1 << 20, absl::Seconds(2), 256, 3, true});
    ASSERT_THAT(bus, IsOk());
    bus_ = *std::move(bus);
  }
  void TearDown() override {
    bus_.reset();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  // Lays out ring |index| in fresh DMA memory and hands it over.
  void SetupRing(uint32_t index) {
    auto dma = bus_->AllocateDma(3 * 4096);
    ASSERT_THAT(dma, IsOk());
    QueueLayout layout{64, dma->device_addr, dma->device_addr + 4096,
                       dma->device_addr + 8192};
    VRPC_ASSERT_OK(bus_->SetupQueue(index, layout));
    layouts_[index] = layout;
  }

  std::string dir_, path_;
  std::unique_ptr<VirtioUserBus> bus_;
  QueueLayout layouts_[3];
};

TEST_F(VirtioUserBusTest, CreateChecksThePath) {
  EXPECT_THAT(VirtioUserBus::Create({""}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(VirtioUserBus::Create({std::string(200, 'x')}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(bus_->name(), "virtio-user:" + path_);
}

TEST_F(VirtioUserBusTest, NoBackendIsUnavailable) {
  EXPECT_THAT(bus_->Reset(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(bus_->NegotiateFeatures(kVirtioFeatureVersion1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(bus_->InterruptFd(0), -1);
  EXPECT_TRUE(bus_->control_fds().empty());
}

TEST_F(VirtioUserBusTest, NegotiatesLikeQemuAndStartsThreeRings) {
  BackendServer server(path_);
  VRPC_ASSERT_OK(bus_->Reset());
  VRPC_ASSERT_OK_AND_ASSIGN(
      const uint64_t features,
      bus_->NegotiateFeatures(kVirtioFeatureVersion1 | kVirtioFeatureEventIdx |
                              kVirtioFeatureInOrder | kVsockFeatureSeqpacket));
  // The device offers neither IN_ORDER nor SEQPACKET.
  EXPECT_EQ(features, kVirtioFeatureVersion1 | kVirtioFeatureEventIdx);
  uint8_t cid[8];
  VRPC_ASSERT_OK(bus_->ReadConfig(0, absl::MakeSpan(cid)));
  EXPECT_EQ(cid[0], 3);
  EXPECT_THAT(bus_->AllocateDma(2 << 20), StatusIs(absl::StatusCode::kResourceExhausted));
  for (uint32_t i = 0; i < 3; ++i) SetupRing(i);
  VRPC_ASSERT_OK(bus_->Start());
  for (uint32_t i = 0; i < 3; ++i) EXPECT_GE(bus_->InterruptFd(i), 0);
  EXPECT_EQ(bus_->control_fds().size(), 2u);
  VRPC_EXPECT_OK(bus_->HandleControl());

  server.Stop();
  EXPECT_EQ(server.backend().acked_features(),
            features | vhost_user::kFeatureProtocolFeatures);
  EXPECT_EQ(server.backend().acked_protocol_features(), 0x209u);
  EXPECT_EQ(server.backend().stats().violations, 0u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(server.backend().ring_started(i)) << i;
    EXPECT_TRUE(server.backend().ring_enabled(i)) << i;
    const vhost_user::RingConfig& ring = server.device().running.at(i);
    EXPECT_EQ(ring.num, 64u);
    EXPECT_EQ(ring.desc_guest_addr, layouts_[i].desc_addr);
    EXPECT_EQ(ring.avail_guest_addr, layouts_[i].avail_addr);
    EXPECT_EQ(ring.used_guest_addr, layouts_[i].used_addr);
    EXPECT_TRUE(ring.event_idx);
    EXPECT_NE(ring.kick, nullptr);
    EXPECT_NE(ring.call, nullptr);
  }
  // The device sees the driver's memory: a byte written here is there.
  std::shared_ptr<const vhost_user::MemoryTable> table = server.device().memory;
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->regions().size(), 1u);
  EXPECT_EQ(table->regions()[0].guest_addr, VirtioUserBus::kDmaBase);
  auto dma = bus_->DmaMemory();
  auto mine = dma.Translate(layouts_[2].desc_addr, 1);
  ASSERT_THAT(mine, IsOk());
  **mine = 0xab;
  EXPECT_EQ(*table->GuestToHost(layouts_[2].desc_addr, 1), 0xab);
}

TEST_F(VirtioUserBusTest, HangUpAndRingErrorsAreReported) {
  BackendServer server(path_);
  VRPC_ASSERT_OK(bus_->Reset());
  VRPC_ASSERT_OK(bus_->NegotiateFeatures(kVirtioFeatureVersion1).status());
  for (uint32_t i = 0; i < 3; ++i) SetupRing(i);
  VRPC_ASSERT_OK(bus_->Start());
  // The device's error eventfd (SET_VRING_ERR) reaches the driver.
  bus_->Notify(0);
  server.Stop();
  const uint64_t one = 1;
  ASSERT_EQ(::write(server.device().running.at(1).err->get(), &one, 8), 8);
  EXPECT_THAT(bus_->HandleControl(), StatusIs(absl::StatusCode::kInternal));
  server.backend().Disconnect();
  EXPECT_THAT(bus_->HandleControl(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(VirtioUserBusTest, TheEventQueueStaysWithTheFrontendByDefault) {
  BackendServer server(path_);
  auto bus = VirtioUserBus::Create({path_, 1 << 20});
  ASSERT_THAT(bus, IsOk());
  bus_ = *std::move(bus);
  VRPC_ASSERT_OK(bus_->Reset());
  VRPC_ASSERT_OK(bus_->NegotiateFeatures(kVirtioFeatureVersion1).status());
  for (uint32_t i = 0; i < 3; ++i) SetupRing(i);
  VRPC_ASSERT_OK(bus_->Start());
  EXPECT_GE(bus_->InterruptFd(2), 0);
  bus_->Notify(2);
  server.Stop();
  EXPECT_TRUE(server.backend().ring_started(0));
  EXPECT_TRUE(server.backend().ring_started(1));
  EXPECT_FALSE(server.backend().ring_started(2));
}

TEST_F(VirtioUserBusTest, ResetStartsAFreshSessionAndReleasesTheOldOne) {
  BackendServer server(path_);
  const size_t fds = CountOpenFds();
  for (int round = 0; round < 3; ++round) {
    VRPC_ASSERT_OK(bus_->Reset());
    VRPC_ASSERT_OK(bus_->NegotiateFeatures(kVirtioFeatureVersion1).status());
    for (uint32_t i = 0; i < 3; ++i) SetupRing(i);
    VRPC_ASSERT_OK(bus_->Start());
  }
  server.Stop();
  EXPECT_EQ(server.sessions(), 3);
  server.backend().Disconnect();
  bus_.reset();
  EXPECT_EQ(CountOpenFds(), fds) << "descriptor leak";
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
