// The guest driver (this process, virtio-user) against vrpc's vsock device
// in a host_peer child process whose host side uses the device's in-process
// endpoints (core/transport over VsockHost): 64 MiB echoed with content
// checked in both connection directions, guest-to-host credit exhaustion
// and recovery, 256 concurrent connections, and the device process killed
// under a running transfer and replaced.
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/base/logging.h"
#include "core/base/status_matchers.h"
#include "core/transport/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/virtio_user/guest_actors.h"
#include "tests/virtio_user/harness.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace virtio_user_test {
namespace {

using transport::Connection;
using vsock::EchoClient;
using vsock::EchoServer;

constexpr uint64_t kMiB = 1 << 20;

class InProcessHostTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto peer = StartHostPeer(dir_.path());
    ASSERT_THAT(peer, IsOk());
    peer_ = *std::move(peer);
    vsock::VsockDriverOptions options;
    auto mode = vsock::ParseDriverNotifyMode(GetParam());
    ASSERT_THAT(mode, IsOk());
    options.notify_mode = *mode;
    auto driver = DriverThread::Start(vm_.socket, options);
    ASSERT_THAT(driver, IsOk());
    driver_ = *std::move(driver);
  }
  void TearDown() override {
    driver_.reset();
    peer_.reset();
  }

  // Starts EchoClients of |bytes| each to host |port|; returns their
  // verdicts.
  std::vector<std::future<absl::Status>> StartEchoes(int n, uint32_t port, uint64_t bytes) {
    std::vector<std::future<absl::Status>> out;
    driver_->Call([&] {
      auto connector = driver_->driver().ConnectorTo(vsock::kCidHost, port);
      VRPC_CHECK(connector.ok());
      for (int i = 0; i < n; ++i) {
        auto done = std::make_shared<std::promise<absl::Status>>();
        out.push_back(done->get_future());
        clients_.push_back(std::make_unique<EchoClient>(
            **connector, bytes, [done](absl::Status s) { done->set_value(s); }));
      }
      return 0;
    });
    return out;
  }
  void DropClients() {
    driver_->Call([&] {
      clients_.clear();
      return 0;
    });
  }

  TempDir dir_;
  VmPaths vm_{dir_.path()};
  std::unique_ptr<ChildProcess> peer_;
  std::unique_ptr<DriverThread> driver_;
  std::vector<std::unique_ptr<EchoClient>> clients_;  // on the driver thread
};

TEST_P(InProcessHostTest, GuestConnects64MiBEchoedAndChecked) {
  auto done = StartEchoes(1, 5000, 64 * kMiB);
  ASSERT_EQ(done[0].wait_for(std::chrono::seconds(120)), std::future_status::ready);
  VRPC_EXPECT_OK(done[0].get());
  const double mbps = driver_->Call([&] {
    return 64.0 * kMiB / absl::ToDoubleSeconds(clients_[0]->elapsed()) / 1e6;
  });
  std::printf("[%s] guest -> in-process host echo: 64 MiB each way, %.1f MB/s\n", GetParam(),
              mbps);
  const auto stats = driver_->Call([&] { return clients_[0]->connection()->stats(); });
  EXPECT_EQ(stats.tx_bytes_copied, 0u);
  EXPECT_EQ(stats.bytes_read, 64 * kMiB);
  DropClients();
}

TEST_P(InProcessHostTest, HostConnects64MiBEchoedAndChecked) {
  std::unique_ptr<EchoServer> server = driver_->Call([&] {
    auto listener = driver_->driver().Listen(6000);
    VRPC_CHECK(listener.ok());
    return std::make_unique<EchoServer>(*std::move(listener), 1, [](absl::Status) {});
  });
  ASSERT_TRUE(peer_->WriteLine("CONNECT 6000 67108864"));
  auto line = peer_->ReadLine(absl::Seconds(120));
  ASSERT_THAT(line, IsOk());
  std::vector<std::string> words = absl::StrSplit(*line, ' ');
  ASSERT_EQ(words.size(), 4u) << *line;
  EXPECT_EQ(words[0], "DONE");
  EXPECT_EQ(words[1], "0") << "status code";
  EXPECT_EQ(words[2], "67108864");
  std::printf("[%s] in-process host -> guest echo: 64 MiB each way, %s MB/s\n", GetParam(),
              words[3].c_str());
  driver_->Call([&] {
    server.reset();
    return 0;
  });
}

TEST_P(InProcessHostTest, GuestRunsOutOfCreditAndRecovers) {
  // The sink holds off reading for 300 ms: the guest fills the host's
  // window, is told so, then resumes when the host reads.
  std::unique_ptr<PatternWriter> writer = driver_->Call([&] {
    auto conn = (*driver_->driver().ConnectorTo(vsock::kCidHost, 5001))->Connect();
    VRPC_CHECK(conn.ok());
    return std::make_unique<PatternWriter>(*std::move(conn), 4 * kMiB);
  });
  ASSERT_TRUE(driver_->WaitFor([&] { return writer->blocked_seen(); }, absl::Seconds(10)));
  EXPECT_EQ(writer->credit_when_blocked(), 0u);
  EXPECT_LT(writer->written(), 4 * kMiB);
  auto line = peer_->ReadLine(absl::Seconds(60));
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(*line, "SINK 4194304 0");
  EXPECT_TRUE(writer->writable_seen());
  EXPECT_TRUE(writer->finished());
  driver_->Call([&] {
    writer.reset();
    return 0;
  });
}

TEST_P(InProcessHostTest, TwoHundredFiftySixConcurrentConnections) {
  auto done = StartEchoes(256, 5000, 256 * 1024);
  for (auto& f : done) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(120)), std::future_status::ready);
    VRPC_EXPECT_OK(f.get());
  }
  const auto stats = driver_->Call([&] { return driver_->driver().stats(); });
  EXPECT_EQ(stats.device_losses, 0u);
  DropClients();
}

TEST_P(InProcessHostTest, DeviceProcessKilledMidStreamThenReplaced) {
  auto done = StartEchoes(1, 5000, uint64_t{1} << 40);  // runs until the kill
  ASSERT_TRUE(driver_->WaitFor([&] { return clients_[0]->received() > 8 * kMiB; },
                               absl::Seconds(30)));
  peer_->Kill();
  ASSERT_EQ(done[0].wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(done[0].get().ok());
  const absl::Status closed = driver_->Call([&] { return clients_[0]->connection()->status(); });
  EXPECT_THAT(closed, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(driver_->WaitFor([&] { return !driver_->driver().up(); }, absl::Seconds(5)));
  DropClients();

  auto peer = StartHostPeer(dir_.path());
  ASSERT_THAT(peer, IsOk());
  peer_ = *std::move(peer);
  ASSERT_TRUE(driver_->WaitFor([&] { return driver_->driver().up(); }, absl::Seconds(10)));
  auto again = StartEchoes(1, 5000, 4 * kMiB);
  ASSERT_EQ(again[0].wait_for(std::chrono::seconds(60)), std::future_status::ready);
  VRPC_EXPECT_OK(again[0].get());
  const auto stats = driver_->Call([&] { return driver_->driver().stats(); });
  EXPECT_EQ(stats.device_losses, 1u);
  EXPECT_EQ(stats.bring_ups, 2u);
  DropClients();
}

INSTANTIATE_TEST_SUITE_P(Modes, InProcessHostTest,
                         ::testing::Values("interrupt", "poll", "adaptive"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace virtio_user_test
}  // namespace vrpc
