// The in-process endpoints (core/transport Connection / Listener / Connector)
// of a VsockHost, against a real guest protocol engine on a manual reactor.
#include "transport_vsock/node/inprocess.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/device/testing/host_harness.h"

namespace vrpc {
namespace vsock {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::HostHarness;
using testing::Pattern;
using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;

using Type = ConnectionEventType;

// Records a connection's events.
struct Recorder {
  std::vector<Type> types;
  absl::Status closed;
  Connection::EventHandler Handler() {
    return [this](const ConnectionEvent& e) {
      types.push_back(e.type);
      if (e.type == Type::kClosed) closed = e.status;
    };
  }
  bool Saw(Type t) const { return std::find(types.begin(), types.end(), t) != types.end(); }
};

class InProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(h_.Start(""), IsOk()); }
  void Settle() { ASSERT_TRUE(h_.Settle()) << "never settled"; }

  // A host listener on |port| whose accepted connections land in accepted_.
  std::unique_ptr<transport::Listener> ListenOn(uint32_t port) {
    auto listener = h_.host().Listen(port);
    EXPECT_THAT(listener, IsOk());
    if (!listener.ok()) return nullptr;
    (*listener)->SetAcceptHandler([this](std::unique_ptr<Connection> c) {
      c->SetEventHandler(recorder_.Handler());
      accepted_.push_back(std::move(c));
    });
    return *std::move(listener);
  }

  ConnId GuestConnect(uint32_t port) {
    auto id = h_.guest().Connect(port, SocketType::kStream, h_.now(), h_.guest_out());
    EXPECT_THAT(id, IsOk());
    return id.ok() ? *id : ConnId{};
  }

  // Everything the host connection has buffered, as a string; the Slices
  // are dropped at once (returning guest buffers).
  static std::string ReadAll(Connection& c) {
    auto data = c.Read(SIZE_MAX);
    EXPECT_THAT(data, IsOk());
    return data.ok() ? data->ToString() : "";
  }

  std::string GuestReadAll(ConnId g) {
    auto data = h_.guest().Read(g, SIZE_MAX, h_.guest_out());
    EXPECT_THAT(data, IsOk());
    return data.ok() ? data->ToString() : "";
  }

  HostHarness h_;
  Recorder recorder_;
  std::vector<std::unique_ptr<Connection>> accepted_;
};

TEST_F(InProcessTest, GuestConnectsToHostListenerAndDataFlowsBothWaysWithoutCopies) {
  auto listener = ListenOn(7000);
  EXPECT_EQ(listener->address(), "vsock:2:7000");
  const ConnId g = GuestConnect(7000);
  Settle();
  ASSERT_TRUE(h_.GuestHas(g, EventType::kConnected));
  ASSERT_EQ(accepted_.size(), 1u);
  Connection& c = *accepted_[0];
  EXPECT_EQ(c.state(), ConnectionState::kOpen);
  EXPECT_THAT(c.peer_address(), HasSubstr("vsock:3:"));

  const std::string up = Pattern(1 << 20, 1), down = Pattern(1 << 20, 2);
  SliceChain to_host(Slice::Copy(up));
  SliceChain to_guest(Slice::Copy(down));
  std::string host_got, guest_got;
  for (int i = 0; i < 10000 && (host_got.size() < up.size() || guest_got.size() < down.size());
       ++i) {
    if (!to_host.empty()) {
      ASSERT_THAT(h_.guest().Send(g, to_host, h_.now(), h_.guest_out()), IsOk());
    }
    if (!to_guest.empty()) {
      ASSERT_THAT(c.Write(to_guest), IsOk());
    }
    Settle();
    host_got += ReadAll(c);
    guest_got += GuestReadAll(g);
    Settle();
  }
  EXPECT_EQ(host_got, up);
  EXPECT_EQ(guest_got, down);
  EXPECT_TRUE(recorder_.Saw(Type::kReadable));
  const transport::ConnectionStats stats = c.stats();
  EXPECT_EQ(stats.bytes_read, up.size());
  EXPECT_EQ(stats.bytes_written, down.size());
  EXPECT_EQ(stats.rx_bytes_copied, 0u);
  EXPECT_EQ(stats.tx_bytes_copied, 0u);
}

TEST_F(InProcessTest, SmallPayloadsAndDeviceCopiesAreCounted) {
  auto listener = ListenOn(7000);
  const ConnId g = GuestConnect(7000);
  Settle();
  ASSERT_EQ(accepted_.size(), 1u);
  for (int i = 0; i < 10; ++i) {
    SliceChain tiny(Slice::Copy("0123456789"));
    ASSERT_THAT(h_.guest().Send(g, tiny, h_.now(), h_.guest_out()), IsOk());
  }
  Settle();
  EXPECT_EQ(ReadAll(*accepted_[0]).size(), 100u);
  EXPECT_EQ(accepted_[0]->stats().rx_bytes_copied, 100u);  // below copy_below

  // A payload the device had to copy (ring pressure) is charged as well.
  VRPC_ASSERT_OK_AND_ASSIGN(ConnInfo info, h_.guest().GetInfo(g, h_.now()));
  Header h;
  h.src_cid = testing::kGuestCid;
  h.dst_cid = kCidHost;
  h.src_port = info.local_port;
  h.dst_port = info.peer_port;
  h.type = static_cast<uint16_t>(SocketType::kStream);
  h.op = static_cast<uint16_t>(Op::kRw);
  const std::string big = Pattern(4096, 3);
  h.len = static_cast<uint32_t>(big.size());
  h.buf_alloc = info.credit.buf_alloc;
  h.fwd_cnt = info.credit.fwd_cnt;
  h_.host().OnGuestPacket(h, SliceChain(Slice::Copy(big)), /*copied_bytes=*/4096);
  Settle();
  EXPECT_EQ(ReadAll(*accepted_[0]), big);
  EXPECT_EQ(accepted_[0]->stats().rx_bytes_copied, 100u + 4096u);
}

TEST_F(InProcessTest, ConnectionsWaitInTheBacklogUntilAHandlerIsSet) {
  auto listener = h_.host().Listen(7001);
  ASSERT_THAT(listener, IsOk());
  const ConnId g1 = GuestConnect(7001);
  const ConnId g2 = GuestConnect(7001);
  Settle();
  EXPECT_TRUE(h_.GuestHas(g1, EventType::kConnected));
  EXPECT_TRUE(h_.GuestHas(g2, EventType::kConnected));
  std::vector<std::unique_ptr<Connection>> got;
  (*listener)->SetAcceptHandler([&](std::unique_ptr<Connection> c) { got.push_back(std::move(c)); });
  EXPECT_EQ(got.size(), 2u);
  EXPECT_THAT(h_.host().Listen(7001), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(InProcessTest, ListenerGoneMeansRefused) {
  auto listener = ListenOn(7002);
  listener.reset();
  Settle();
  const ConnId g = GuestConnect(7002);
  Settle();
  EXPECT_TRUE(h_.GuestHas(g, EventType::kRefused));
  EXPECT_TRUE(accepted_.empty());
  // The port is free again.
  EXPECT_THAT(h_.host().Listen(7002), IsOk());
}

TEST_F(InProcessTest, HostConnectsToGuestPort) {
  ASSERT_THAT(h_.guest().Listen(6000, SocketType::kStream, 4), IsOk());
  auto connector = h_.host().ConnectorTo(6000);
  EXPECT_EQ(connector->address(), "vsock:3:6000");
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Connection> c, connector->Connect());
  Recorder rec;
  c->SetEventHandler(rec.Handler());
  EXPECT_EQ(c->state(), ConnectionState::kConnecting);
  Settle();
  EXPECT_EQ(c->state(), ConnectionState::kOpen);
  EXPECT_THAT(rec.types, ElementsAre(Type::kConnected));
  std::optional<ConnId> g = h_.guest().Accept(6000);
  ASSERT_TRUE(g.has_value());

  SliceChain hello(Slice::Copy("hello guest"));
  VRPC_ASSERT_OK_AND_ASSIGN(size_t n, c->Write(hello));
  EXPECT_EQ(n, 11u);
  Settle();
  EXPECT_EQ(GuestReadAll(*g), "hello guest");

  // The guest answers and shuts down: the host reads, then sees EOF.
  SliceChain reply(Slice::Copy("bye"));
  ASSERT_THAT(h_.guest().Send(*g, reply, h_.now(), h_.guest_out()), IsOk());
  ASSERT_THAT(h_.guest().Shutdown(*g, kShutdownSend, h_.now(), h_.guest_out()), IsOk());
  Settle();
  EXPECT_TRUE(rec.Saw(Type::kPeerShutdown));
  EXPECT_FALSE(c->AtEof());
  EXPECT_EQ(ReadAll(*c), "bye");
  EXPECT_TRUE(c->AtEof());

  // Orderly close from the host side.
  ASSERT_THAT(c->ShutdownWrite(), IsOk());
  EXPECT_THAT(c->Write(hello), StatusIs(absl::StatusCode::kFailedPrecondition));
  Settle();
  EXPECT_TRUE(h_.GuestHas(*g, EventType::kPeerShutdown));
  EXPECT_FALSE(rec.Saw(Type::kClosed));  // the guest has not closed yet
  h_.guest().Close(*g, h_.now(), h_.guest_out());
  Settle();
  EXPECT_TRUE(rec.Saw(Type::kClosed));
  EXPECT_THAT(rec.closed, IsOk());
  EXPECT_EQ(c->state(), ConnectionState::kClosed);
}

TEST_F(InProcessTest, ConnectToNothingClosesWithUnavailable) {
  auto connector = h_.host().ConnectorTo(6001);
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Connection> c, connector->Connect());
  Recorder rec;
  c->SetEventHandler(rec.Handler());
  Settle();
  EXPECT_THAT(rec.types, ElementsAre(Type::kClosed));
  EXPECT_THAT(rec.closed, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(c->state(), ConnectionState::kClosed);
}

TEST_F(InProcessTest, CreditBlockedThenWritable) {
  EngineConfig small;
  small.buf_alloc = 64 * 1024;
  HostHarness h;
  ASSERT_THAT(h.Start("", small), IsOk());
  ASSERT_THAT(h.guest().Listen(6000, SocketType::kStream, 4), IsOk());
  VRPC_ASSERT_OK_AND_ASSIGN(auto c, h.host().ConnectorTo(6000)->Connect());
  Recorder rec;
  c->SetEventHandler(rec.Handler());
  ASSERT_TRUE(h.Settle());
  std::optional<ConnId> g = h.guest().Accept(6000);
  ASSERT_TRUE(g.has_value());

  SliceChain data(Slice::Copy(Pattern(256 * 1024, 4)));
  VRPC_ASSERT_OK_AND_ASSIGN(size_t n, c->Write(data));
  EXPECT_EQ(n, 64u * 1024);  // the guest's whole window, no more
  EXPECT_EQ(data.size(), 192u * 1024);
  ASSERT_TRUE(h.Settle());
  EXPECT_TRUE(rec.Saw(Type::kCreditBlocked));
  EXPECT_TRUE(c->credit().blocked);
  EXPECT_EQ(c->credit().peer_buf_alloc, 64u * 1024);
  VRPC_ASSERT_OK_AND_ASSIGN(size_t none, c->Write(data));
  EXPECT_EQ(none, 0u);

  ASSERT_THAT(h.guest().Read(*g, SIZE_MAX, h.guest_out()), IsOk());
  ASSERT_TRUE(h.Settle());
  EXPECT_TRUE(rec.Saw(Type::kWritable));
  EXPECT_FALSE(c->credit().blocked);
  VRPC_ASSERT_OK_AND_ASSIGN(size_t more, c->Write(data));
  EXPECT_GT(more, 0u);
}

TEST_F(InProcessTest, TransportResetClosesButBufferedBytesStayReadable) {
  auto listener = ListenOn(7000);
  const ConnId g = GuestConnect(7000);
  Settle();
  ASSERT_EQ(accepted_.size(), 1u);
  SliceChain data(Slice::Copy("acknowledged"));
  ASSERT_THAT(h_.guest().Send(g, data, h_.now(), h_.guest_out()), IsOk());
  Settle();
  h_.host().OnTransportReset(absl::UnavailableError("frontend disconnected"));
  Settle();
  Connection& c = *accepted_[0];
  EXPECT_EQ(c.state(), ConnectionState::kClosed);
  EXPECT_THAT(recorder_.closed, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(ReadAll(c), "acknowledged");
  EXPECT_THAT(c.Read(SIZE_MAX), StatusIs(absl::StatusCode::kUnavailable));
  SliceChain more(Slice::Copy("x"));
  EXPECT_FALSE(c.Write(more).ok());
}

TEST_F(InProcessTest, HandlerMayDestroyTheConnection) {
  auto listener = h_.host().Listen(7000);
  ASSERT_THAT(listener, IsOk());
  std::unique_ptr<Connection> held;
  int events = 0;
  (*listener)->SetAcceptHandler([&](std::unique_ptr<Connection> c) {
    held = std::move(c);
    held->SetEventHandler([&](const ConnectionEvent&) {
      ++events;
      held.reset();  // destroys the connection and this handler's owner
    });
  });
  const ConnId g = GuestConnect(7000);
  Settle();
  SliceChain data(Slice::Copy("x"));
  ASSERT_THAT(h_.guest().Send(g, data, h_.now(), h_.guest_out()), IsOk());
  Settle();
  EXPECT_EQ(events, 1);
  EXPECT_EQ(held, nullptr);
  // The guest sees the host's close.
  EXPECT_TRUE(h_.GuestHas(g, EventType::kPeerShutdown) || h_.GuestHas(g, EventType::kReset));
  EXPECT_EQ(h_.host().engine().stats().connections, 0u);
}

TEST_F(InProcessTest, EndpointsOutliveTheHost) {
  auto listener = ListenOn(7000);
  const ConnId g = GuestConnect(7000);
  Settle();
  ASSERT_EQ(accepted_.size(), 1u);
  auto connector = h_.host().ConnectorTo(6000);
  h_.StopHost();
  Connection& c = *accepted_[0];
  EXPECT_THAT(c.Read(16), StatusIs(absl::StatusCode::kUnavailable));
  SliceChain data(Slice::Copy("x"));
  EXPECT_THAT(c.Write(data), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(connector->Connect(), StatusIs(absl::StatusCode::kUnavailable));
  accepted_.clear();
  listener.reset();
  (void)g;
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
