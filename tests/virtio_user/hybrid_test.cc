// The guest driver (this process, virtio-user) against the host_agent
// binary (a child process), whose host ends are its Firecracker-style hybrid
// Unix sockets: guest connections to host port P land on <uds>_P, host
// connections to a guest port go through "CONNECT <port>\n" on <uds>.
//
// Bulk data (64 MiB, content checked) flows host -> guest in both
// connection directions, and guest -> host as a 64 MiB echo through <uds>_P.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kReply = 64 * 1024;

// Host end for guest connections: sends |bytes| of pattern, half-closes,
// then reads and checks the guest's reply.
HostServer::Serve SendThenRead(uint64_t bytes) {
  return [bytes](int fd) {
    (void)WritePattern(fd, bytes);
    ::shutdown(fd, SHUT_WR);
    return ReadAndCheck(fd);
  };
}

class HybridTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto agent = StartAgent(dir_.path());
    ASSERT_THAT(agent, IsOk());
    agent_ = *std::move(agent);
    vsock::VsockDriverOptions options;
    auto mode = vsock::ParseDriverNotifyMode(GetParam());
    ASSERT_THAT(mode, IsOk());
    options.notify_mode = *mode;
    auto driver = DriverThread::Start(vm_.socket, options);
    ASSERT_THAT(driver, IsOk());
    driver_ = *std::move(driver);
  }
  void TearDown() override {
    if (driver_ != nullptr) driver_->Call([&] { readers_.clear(); });
    driver_.reset();
    agent_.reset();
  }

  std::string HostPort(uint32_t port) const { return absl::StrCat(vm_.uds, "_", port); }

  // A PatternReader on a guest connection to host |port|.
  PatternReader* ConnectReader(uint32_t port, uint64_t reply) {
    return driver_->Call([&] {
      auto conn = (*driver_->driver().ConnectorTo(vsock::kCidHost, port))->Connect();
      VRPC_CHECK(conn.ok()) << conn.status();
      readers_.push_back(std::make_unique<PatternReader>(*std::move(conn), reply));
      return readers_.back().get();
    });
  }
  // Guest connections to |port| are read by PatternReaders.
  std::unique_ptr<transport::Listener> ListenReaders(uint32_t port, uint64_t reply, bool paused) {
    return driver_->Call([&] {
      auto listener = driver_->driver().Listen(port);
      VRPC_CHECK(listener.ok());
      (*listener)->SetAcceptHandler([this, reply, paused](std::unique_ptr<Connection> c) {
        readers_.push_back(std::make_unique<PatternReader>(std::move(c), reply, paused));
      });
      return *std::move(listener);
    });
  }
  void DropOnDriver(std::unique_ptr<transport::Listener>& l) {
    driver_->Call([&] { l.reset(); });
  }

  TempDir dir_;
  VmPaths vm_{dir_.path()};
  std::unique_ptr<ChildProcess> agent_;
  std::unique_ptr<DriverThread> driver_;
  std::vector<std::unique_ptr<PatternReader>> readers_;  // on the driver thread
};

TEST_P(HybridTest, GuestConnectsAndReceives64MiB) {
  HostServer host(HostPort(5000), SendThenRead(64 * kMiB));
  PatternReader* reader = ConnectReader(5000, kReply);
  ASSERT_TRUE(driver_->WaitFor([&] { return reader->eof(); }, absl::Seconds(120)));
  EXPECT_EQ(reader->received(), 64 * kMiB);
  EXPECT_EQ(reader->mismatches(), 0u);
  const double secs = driver_->Call([&] { return absl::ToDoubleSeconds(reader->elapsed()); });
  std::printf("[%s] host -> guest over <uds>_P: 64 MiB, %.1f MB/s\n", GetParam(),
              64.0 * kMiB / secs / 1e6);
  for (int i = 0; i < 500 && host.results().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  auto results = host.results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].received, kReply);
  EXPECT_EQ(results[0].mismatches, 0u);
  EXPECT_TRUE(results[0].eof);
  const auto stats = driver_->Call([&] { return reader->connection().stats(); });
  EXPECT_EQ(stats.tx_bytes_copied, 0u);
}

TEST_P(HybridTest, HostConnectsAndSends64MiB) {
  auto listener = ListenReaders(6000, kReply, /*paused=*/false);
  auto fd = ConnectToGuest(vm_.uds, 6000);
  ASSERT_THAT(fd, IsOk());
  const absl::Time start = absl::Now();
  VRPC_ASSERT_OK(WritePattern(fd->get(), 64 * kMiB));
  ::shutdown(fd->get(), SHUT_WR);
  const HostConnResult reply = ReadAndCheck(fd->get());
  std::printf("[%s] host -> guest over CONNECT: 64 MiB, %.1f MB/s\n", GetParam(),
              64.0 * kMiB / absl::ToDoubleSeconds(absl::Now() - start) / 1e6);
  EXPECT_EQ(reply.received, kReply);
  EXPECT_EQ(reply.mismatches, 0u);
  EXPECT_TRUE(reply.eof);
  ASSERT_EQ(driver_->Call([&] { return readers_.size(); }), 1u);
  EXPECT_EQ(readers_[0]->received(), 64 * kMiB);
  EXPECT_EQ(readers_[0]->mismatches(), 0u);
  DropOnDriver(listener);
}

TEST_P(HybridTest, TwoHundredFiftySixConcurrentConnections) {
  HostServer host(HostPort(5000), EchoAndCheck);
  constexpr int kConns = 256;
  constexpr uint64_t kBytes = 16 * 1024;
  std::vector<std::future<absl::Status>> done;
  std::vector<std::unique_ptr<EchoClient>> clients = driver_->Call([&] {
    std::vector<std::unique_ptr<EchoClient>> out;
    auto connector = driver_->driver().ConnectorTo(vsock::kCidHost, 5000);
    for (int i = 0; i < kConns; ++i) {
      auto p = std::make_shared<std::promise<absl::Status>>();
      done.push_back(p->get_future());
      out.push_back(std::make_unique<EchoClient>(**connector, kBytes,
                                                 [p](absl::Status s) { p->set_value(s); }));
    }
    return out;
  });
  for (auto& f : done) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(120)), std::future_status::ready);
    VRPC_EXPECT_OK(f.get());
  }
  driver_->Call([&] { clients.clear(); });
  for (int i = 0; i < 500 && host.results().size() < kConns; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  auto results = host.results();
  ASSERT_EQ(results.size(), static_cast<size_t>(kConns));
  for (const HostConnResult& r : results) {
    EXPECT_EQ(r.received, kBytes);
    EXPECT_EQ(r.mismatches, 0u);
  }
}

TEST_P(HybridTest, HostRunsOutOfCreditAndRecovers) {
  // The guest holds off reading: the host's writes stall once the guest's
  // window (and the socket buffers) are full, and resume when it reads.
  auto listener = ListenReaders(6001, 0, /*paused=*/true);
  auto fd = ConnectToGuest(vm_.uds, 6001);
  ASSERT_THAT(fd, IsOk());
  std::atomic<bool> written{false};
  std::thread writer([&] {
    VRPC_EXPECT_OK(WritePattern(fd->get(), 8 * kMiB));
    ::shutdown(fd->get(), SHUT_WR);
    written = true;
  });
  ASSERT_TRUE(driver_->WaitFor([&] { return readers_.size() == 1; }, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_FALSE(written) << "8 MiB fit in a 256 KiB window?";
  const transport::CreditInfo credit =
      driver_->Call([&] { return readers_[0]->connection().credit(); });
  EXPECT_EQ(credit.local_fwd_cnt, 0u);
  EXPECT_GT(credit.local_buf_alloc, 0u);
  driver_->Call([&] { readers_[0]->Resume(); });
  writer.join();
  ASSERT_TRUE(driver_->WaitFor([&] { return readers_[0]->eof(); }, absl::Seconds(60)));
  EXPECT_EQ(readers_[0]->received(), 8 * kMiB);
  EXPECT_EQ(readers_[0]->mismatches(), 0u);
  DropOnDriver(listener);
}

TEST_P(HybridTest, AgentKilledMidStreamThenRestarted) {
  HostServer endless(HostPort(5002), SendThenRead(uint64_t{1} << 40));
  PatternReader* reader = ConnectReader(5002, 0);
  ASSERT_TRUE(driver_->WaitFor([&] { return reader->received() > 8 * kMiB; }, absl::Seconds(30)));
  agent_->Kill();
  ASSERT_TRUE(driver_->WaitFor([&] { return reader->done(); }, absl::Seconds(10)));
  EXPECT_THAT(driver_->Call([&] { return reader->connection().status(); }),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(reader->mismatches(), 0u);
  EXPECT_TRUE(driver_->WaitFor([&] { return !driver_->driver().up(); }, absl::Seconds(5)));

  auto agent = StartAgent(dir_.path());
  ASSERT_THAT(agent, IsOk());
  agent_ = *std::move(agent);
  ASSERT_TRUE(driver_->WaitFor([&] { return driver_->driver().up(); }, absl::Seconds(10)));
  HostServer host(HostPort(5000), SendThenRead(4 * kMiB));
  PatternReader* again = ConnectReader(5000, kReply);
  ASSERT_TRUE(driver_->WaitFor([&] { return again->eof(); }, absl::Seconds(60)));
  EXPECT_EQ(again->received(), 4 * kMiB);
  EXPECT_EQ(again->mismatches(), 0u);
  const auto stats = driver_->Call([&] { return driver_->driver().stats(); });
  EXPECT_EQ(stats.device_losses, 1u);
  EXPECT_EQ(stats.bring_ups, 2u);
}

// Guest -> host bulk through the hybrid bridge, echoed: regression test for
// the bridge that stopped pulling from the engine after a socket EAGAIN
// (a credit-blocked guest sends no packet to wake it).
TEST_P(HybridTest, GuestSends64MiBThroughTheHybridBridge) {
  HostServer host(HostPort(5000), EchoAndCheck);
  std::promise<absl::Status> done;
  std::unique_ptr<EchoClient> client = driver_->Call([&] {
    auto connector = driver_->driver().ConnectorTo(vsock::kCidHost, 5000);
    return std::make_unique<EchoClient>(**connector, 64 * kMiB,
                                        [&](absl::Status s) { done.set_value(s); });
  });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  VRPC_EXPECT_OK(f.get());
  const double secs = driver_->Call([&] { return absl::ToDoubleSeconds(client->elapsed()); });
  std::printf("[%s] guest -> host echo over <uds>_P: 64 MiB each way, %.1f MB/s\n", GetParam(),
              64.0 * kMiB / secs / 1e6);
  EXPECT_EQ(driver_->Call([&] { return client->connection()->stats().tx_bytes_copied; }), 0u);
  driver_->Call([&] { client.reset(); });
  for (int i = 0; i < 500 && host.results().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  auto results = host.results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].received, 64 * kMiB);
  EXPECT_EQ(results[0].mismatches, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, HybridTest, ::testing::Values("interrupt", "poll", "adaptive"),
                         [](const auto& info) { return std::string(info.param); });

// The vsock_probe binary against the agent (one frontend at a time: no
// DriverThread here).
class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto agent = StartAgent(dir_.path());
    ASSERT_THAT(agent, IsOk());
    agent_ = *std::move(agent);
  }
  std::unique_ptr<ChildProcess> Probe(std::vector<std::string> args) {
    args.insert(args.begin(), Runfile("transport_vsock/driver/vsock_probe"));
    auto probe = ChildProcess::Spawn(args, dir_.path() + "/probe.log", /*control=*/true);
    VRPC_CHECK(probe.ok()) << probe.status();
    return *std::move(probe);
  }

  TempDir dir_;
  VmPaths vm_{dir_.path()};
  std::unique_ptr<ChildProcess> agent_;
};

TEST_F(ProbeTest, ConnectEchoesAndVerifies) {
  HostServer host(absl::StrCat(vm_.uds, "_5000"), EchoAndCheck);
  auto probe = Probe({"--bus=virtio-user:" + vm_.socket, "connect", "2", "5000", "67108864"});
  auto line = probe->ReadLine(absl::Seconds(120));
  ASSERT_THAT(line, IsOk());
  std::printf("%s\n", line->c_str());
  EXPECT_TRUE(absl::StrContains(*line, "67108864 bytes to 2:5000 echoed and verified")) << *line;
  EXPECT_THAT(probe->Wait(absl::Seconds(10)), IsOkAndHolds(0));
}

TEST_F(ProbeTest, ServeEchoesCountConnections) {
  auto probe = Probe({"--bus=virtio-user:" + vm_.socket, "--mode=adaptive", "serve", "6000", "2"});
  auto line = probe->ReadLine(absl::Seconds(60));
  ASSERT_THAT(line, IsOk());
  EXPECT_TRUE(absl::StartsWith(*line, "serve: listening on vsock port 6000")) << *line;
  for (int i = 0; i < 2; ++i) {
    auto fd = ConnectToGuest(vm_.uds, 6000);
    ASSERT_THAT(fd, IsOk());
    VRPC_ASSERT_OK(WritePattern(fd->get(), 100000));
    ::shutdown(fd->get(), SHUT_WR);
    const HostConnResult r = ReadAndCheck(fd->get());
    EXPECT_EQ(r.received, 100000u);
    EXPECT_EQ(r.mismatches, 0u);
  }
  EXPECT_THAT(probe->Wait(absl::Seconds(30)), IsOkAndHolds(0));
}

TEST_F(ProbeTest, FailuresAndUnusableBuses) {
  // Nobody listens on host port 7000: refused, exit 1.
  auto refused = Probe({"--bus=virtio-user:" + vm_.socket, "connect", "2", "7000", "1000"});
  EXPECT_THAT(refused->Wait(absl::Seconds(30)), IsOkAndHolds(1));
  // Not a PCI address; then a function that does not exist (never a real
  // one: on these hosts 0000:00:04.0 is the machine's own vsock device).
  auto uio = Probe({"--bus=uio:uio0", "serve", "1", "1"});
  EXPECT_THAT(uio->Wait(absl::Seconds(10)), IsOkAndHolds(2));
  auto vfio = Probe({"--bus=vfio:0000:ff:1f.7", "connect", "2", "1", "1"});
  EXPECT_THAT(vfio->Wait(absl::Seconds(10)), IsOkAndHolds(2));
  auto usage = Probe({"connect"});
  EXPECT_THAT(usage->Wait(absl::Seconds(10)), IsOkAndHolds(2));
  auto no_backend = Probe({"--bus=virtio-user:" + dir_.path() + "/nothing", "serve", "1", "1"});
  EXPECT_THAT(no_backend->Wait(absl::Seconds(10)), IsOkAndHolds(1));
}

}  // namespace
}  // namespace virtio_user_test
}  // namespace vrpc
