// The guest driver against a device that breaks the rules (HARDENING.md
// §5 "guest-side driver trust", rows 2, 5, 7, 12): used ids that were never
// posted, lengths beyond the buffer, lying used.idx, malformed packets,
// reserved CIDs, config changes with TRANSPORT_RESET. The device never
// crashes the driver: a ring violation resets the transport (connections
// end UNAVAILABLE) and the driver brings the device up again.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/manual_reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/driver/testing/direct_bus.h"
#include "transport_vsock/driver/testing/hostile_device.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace vsock {
namespace {

using testing::DirectBus;
using testing::HostileDevice;
using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;

class HostileDeviceTest : public ::testing::Test {
 protected:
  void Start(VsockDriverOptions options = {}) {
    options.queue_size = 16;
    auto bus = std::make_unique<DirectBus>(&device_, 8 << 20);
    bus_ = bus.get();
    options.tx_pool_bytes = 1 << 20;
    auto driver = VsockDriver::Create(std::move(bus), reactor_, options);
    ASSERT_THAT(driver, IsOk());
    driver_ = *std::move(driver);
    Run();
  }
  void Run() { reactor_.RunUntilIdle(); }

  // An established guest connection to host port 5000 (the device answers).
  std::unique_ptr<Connection> Established() {
    auto conn = (*driver_->ConnectorTo(kCidHost, 5000))->Connect();
    EXPECT_THAT(conn, IsOk());
    if (!conn.ok()) return nullptr;
    (*conn)->SetEventHandler([this](const ConnectionEvent& e) {
      if (e.type == ConnectionEventType::kClosed) closed_ = e.status;
    });
    Run();
    device_.DrainTx();
    Run();
    EXPECT_EQ((*conn)->state(), ConnectionState::kOpen);
    return *std::move(conn);
  }
  uint32_t LocalPort() const {
    for (const Header& h : device_.tx_headers()) {
      if (h.op_code() == Op::kRequest) return h.src_port;
    }
    return 0;
  }
  // The transport was reset and came back up.
  void ExpectResetAndRecovery(Connection& conn) {
    Run();
    EXPECT_EQ(conn.state(), ConnectionState::kClosed);
    EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_GE(driver_->stats().violations, 1u);
    reactor_.AdvanceTime(absl::Seconds(2));
    Run();
    EXPECT_TRUE(driver_->up());
    EXPECT_GE(bus_->sessions(), 2);
  }

  io::ManualReactor reactor_;
  HostileDevice device_;
  DirectBus* bus_ = nullptr;
  std::unique_ptr<VsockDriver> driver_;
  absl::Status closed_;
};

TEST_F(HostileDeviceTest, UsedIdNeverPostedResetsTheTransport) {
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(device_.RawUsed(0, /*id=*/9999, 100));  // beyond the ring
  ExpectResetAndRecovery(*conn);
  // A fresh, well-behaved session works.
  device_.DrainTx();
  auto again = Established();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->state(), ConnectionState::kOpen);
}

TEST_F(HostileDeviceTest, UsedLengthBeyondTheBufferResetsTheTransport) {
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  Header h = device_.ToGuest(Op::kRw, 5000, LocalPort(), 10);
  ASSERT_TRUE(device_.DeliverRx(h, "0123456789", /*used_len=*/1 << 20));
  ExpectResetAndRecovery(*conn);
}

TEST_F(HostileDeviceTest, UsedIndexClaimingTooMuchResetsTheTransport) {
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(device_.RawUsed(1, 0, 0, /*advance=*/1000));
  ExpectResetAndRecovery(*conn);
}

TEST_F(HostileDeviceTest, TxCompletionWithALengthIsAViolation) {
  Start();
  auto conn = (*driver_->ConnectorTo(kCidHost, 5000))->Connect();
  ASSERT_THAT(conn, IsOk());
  Run();
  device_.DrainTx(/*respond=*/false, /*used_len=*/44);  // tx buffers are read-only
  Run();
  EXPECT_EQ((*conn)->state(), ConnectionState::kClosed);
  EXPECT_EQ(driver_->stats().violations, 1u);
  EXPECT_EQ(driver_->stats().device_losses, 1u);
  EXPECT_EQ(driver_->stats().bring_ups, 2u);  // back at once: the device answers
  EXPECT_TRUE(driver_->up());
}

TEST_F(HostileDeviceTest, PacketLengthBeyondTheBytesWrittenIsAnRstNotAReset) {
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  Header h = device_.ToGuest(Op::kRw, 5000, LocalPort(), 5000);  // claims 5000
  ASSERT_TRUE(device_.DeliverRx(h, "short"));
  Run();
  EXPECT_TRUE(driver_->up());
  EXPECT_EQ(driver_->stats().violations, 0u);
  EXPECT_EQ(conn->state(), ConnectionState::kClosed);  // the engine reset it
  device_.DrainTx(false);
  const Header& last = device_.tx_headers().back();
  EXPECT_EQ(last.op_code(), Op::kRst);
}

TEST_F(HostileDeviceTest, ShortRxBuffersAndShortEventsAreIgnored) {
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  Header h = device_.ToGuest(Op::kRw, 5000, LocalPort(), 0);
  ASSERT_TRUE(device_.DeliverRx(h, "", /*used_len=*/10));  // no room for a header
  ASSERT_TRUE(device_.PostEvent(0, /*len=*/2));             // not a whole event
  ASSERT_TRUE(device_.PostEvent(77));                       // unknown event id
  Run();
  EXPECT_TRUE(driver_->up());
  EXPECT_EQ(conn->state(), ConnectionState::kOpen);
  EXPECT_EQ(driver_->stats().transport_resets, 0u);
}

TEST_F(HostileDeviceTest, TransportResetEndsConnectionsKeepsListenersAndRereadsTheCid) {
  Start();
  auto listener = driver_->Listen(6000);
  ASSERT_THAT(listener, IsOk());
  std::vector<std::unique_ptr<Connection>> accepted;
  (*listener)->SetAcceptHandler(
      [&](std::unique_ptr<Connection> c) { accepted.push_back(std::move(c)); });
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  device_.set_config_cid(42);
  ASSERT_TRUE(device_.PostEvent(0));  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
  Run();
  EXPECT_EQ(conn->state(), ConnectionState::kClosed);
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(driver_->up());
  EXPECT_EQ(driver_->guest_cid(), 42u);
  EXPECT_EQ(driver_->stats().transport_resets, 1u);
  EXPECT_EQ(driver_->stats().violations, 0u);
  // The listener kept its port, and answers under the new CID.
  Header req = device_.ToGuest(Op::kRequest, 1234, 6000);
  ASSERT_TRUE(device_.DeliverRx(req, ""));
  Run();
  EXPECT_EQ(accepted.size(), 1u);
  device_.DrainTx(false);
  EXPECT_EQ(device_.tx_headers().back().op_code(), Op::kResponse);
  EXPECT_EQ(device_.tx_headers().back().src_cid, 42u);
}

TEST_F(HostileDeviceTest, AReservedCidIsADeviceError) {
  device_.set_config_cid(2);  // the host's
  auto bus = std::make_unique<DirectBus>(&device_, 8 << 20);
  VsockDriverOptions options;
  options.queue_size = 16;
  options.tx_pool_bytes = 1 << 20;
  EXPECT_THAT(VsockDriver::Create(std::move(bus), reactor_, options),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  // After a TRANSPORT_RESET, a reserved CID ends the session; the driver
  // retries with backoff until the device behaves.
  device_.set_config_cid(3);
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  device_.set_config_cid(uint64_t{1} << 40);
  ASSERT_TRUE(device_.PostEvent(0));
  Run();
  EXPECT_FALSE(driver_->up());
  reactor_.AdvanceTime(absl::Seconds(1));
  EXPECT_FALSE(driver_->up());
  EXPECT_GE(driver_->stats().failed_bring_ups, 2u);
  device_.set_config_cid(7);
  reactor_.AdvanceTime(absl::Seconds(2));
  Run();
  EXPECT_TRUE(driver_->up());
  EXPECT_EQ(driver_->guest_cid(), 7u);
}

TEST_F(HostileDeviceTest, InterruptStormsWithNothingUsedAreHarmless) {
  Start();
  auto conn = Established();
  ASSERT_NE(conn, nullptr);
  for (int i = 0; i < 100; ++i) {
    for (uint32_t r = 0; r < 3; ++r) device_.Interrupt(r);
    Run();
  }
  EXPECT_TRUE(driver_->up());
  EXPECT_EQ(conn->state(), ConnectionState::kOpen);
  EXPECT_GE(driver_->stats().interrupts, 100u);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
