// LoopbackTransport: the core/transport endpoints of both sides over the
// vsock protocol, on a deterministic reactor.
#include "transport_vsock/loopback/loopback_transport.h"

#include <memory>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/manual_reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;

class LoopbackTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VRPC_ASSERT_OK_AND_ASSIGN(link_, LoopbackTransport::Create(reactor_));
    VRPC_ASSERT_OK_AND_ASSIGN(listener_, link_->host().Listen(9000));
    listener_->SetAcceptHandler([this](std::unique_ptr<Connection> c) {
      c->SetEventHandler([this](const ConnectionEvent& e) { server_events_.push_back(e.type); });
      server_ = std::move(c);
    });
  }
  void TearDown() override {
    server_.reset();
    client_.reset();
    listener_.reset();
    link_.reset();
  }

  void ConnectClient() {
    VRPC_ASSERT_OK_AND_ASSIGN(client_, link_->guest().ConnectorTo(9000)->Connect());
    client_->SetEventHandler([this](const ConnectionEvent& e) {
      client_events_.push_back(e.type);
      if (e.type == ConnectionEventType::kClosed) client_status_ = e.status;
    });
    reactor_.RunUntilIdle();
    ASSERT_EQ(client_->state(), ConnectionState::kOpen);
    ASSERT_NE(server_, nullptr);
  }

  io::ManualReactor reactor_;
  std::unique_ptr<LoopbackTransport> link_;
  std::unique_ptr<transport::Listener> listener_;
  std::unique_ptr<Connection> server_, client_;
  std::vector<ConnectionEventType> server_events_, client_events_;
  absl::Status client_status_;
};

TEST_F(LoopbackTransportTest, ConnectsAndMovesBytesWithoutCopies) {
  ConnectClient();
  EXPECT_EQ(client_events_.front(), ConnectionEventType::kConnected);
  EXPECT_EQ(client_->peer_address(), "vsock:2:9000");
  std::string big(300 * 1024, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  SliceChain out(Slice::Copy(big));
  std::string got;
  for (int i = 0; i < 1000 && got.size() < big.size(); ++i) {
    if (!out.empty()) ASSERT_THAT(client_->Write(out), IsOk());
    reactor_.RunUntilIdle();
    VRPC_ASSERT_OK_AND_ASSIGN(SliceChain in, server_->Read(SIZE_MAX));
    got += in.ToString();
    reactor_.RunUntilIdle();
  }
  EXPECT_EQ(got, big);
  EXPECT_EQ(server_->stats().rx_bytes_copied, 0u);
  EXPECT_EQ(client_->stats().bytes_written, big.size());
  // 300 KiB through a 256 KiB window: the client was blocked at least once.
  EXPECT_THAT(client_events_, ::testing::Contains(ConnectionEventType::kCreditBlocked));
  EXPECT_THAT(client_events_, ::testing::Contains(ConnectionEventType::kWritable));
}

TEST_F(LoopbackTransportTest, ResetClosesBothSidesWithUnavailable) {
  ConnectClient();
  link_->Reset(absl::UnavailableError("link reset"));
  reactor_.RunUntilIdle();
  EXPECT_EQ(client_->state(), ConnectionState::kClosed);
  EXPECT_EQ(server_->state(), ConnectionState::kClosed);
  EXPECT_THAT(client_status_, StatusIs(absl::StatusCode::kUnavailable));
  // The listener survives: a new connection works.
  server_.reset();
  ConnectClient();
}

TEST_F(LoopbackTransportTest, CutLinkTimesOutTheConnect) {
  link_->set_cut(true);
  VRPC_ASSERT_OK_AND_ASSIGN(client_, link_->guest().ConnectorTo(9000)->Connect());
  client_->SetEventHandler([this](const ConnectionEvent& e) {
    if (e.type == ConnectionEventType::kClosed) client_status_ = e.status;
  });
  reactor_.RunUntilIdle();
  EXPECT_EQ(client_->state(), ConnectionState::kConnecting);
  reactor_.AdvanceTime(absl::Seconds(3));
  reactor_.RunUntilIdle();
  EXPECT_EQ(client_->state(), ConnectionState::kClosed);
  EXPECT_THAT(client_status_, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(LoopbackTransportTest, NothingListeningIsRefused) {
  VRPC_ASSERT_OK_AND_ASSIGN(client_, link_->guest().ConnectorTo(9001)->Connect());
  client_->SetEventHandler([this](const ConnectionEvent& e) {
    if (e.type == ConnectionEventType::kClosed) client_status_ = e.status;
  });
  reactor_.RunUntilIdle();
  EXPECT_EQ(client_->state(), ConnectionState::kClosed);
  EXPECT_THAT(client_status_, StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
