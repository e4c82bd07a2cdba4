// The guest driver against vrpc's real VsockDevice, in one process on one
// ManualReactor: the DirectBus hands the driver's rings (memfd DMA memory,
// eventfd kicks and interrupts) straight to the device, whose host side is
// used through its in-process endpoints.
#include "transport_vsock/driver/vsock_driver.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/manual_reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/device/vsock_device.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/testing/direct_bus.h"

namespace vrpc {
namespace vsock {
namespace {

using testing::DirectBus;
using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;
using Type = ConnectionEventType;

constexpr uint64_t kGuestCid = 3;

std::string Pattern(size_t n, int seed) {
  std::string out(n, '\0');
  uint32_t x = 0x9e3779b9u * static_cast<uint32_t>(seed + 1);
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

// One connection, its events, and what was read from it.
struct Peer {
  std::unique_ptr<Connection> conn;
  std::vector<Type> events;
  absl::Status closed;
  std::string data;

  void Attach(std::unique_ptr<Connection> c) {
    conn = std::move(c);
    conn->SetEventHandler([this](const ConnectionEvent& e) {
      events.push_back(e.type);
      if (e.type == Type::kClosed) closed = e.status;
    });
  }
  bool Saw(Type t) const { return std::find(events.begin(), events.end(), t) != events.end(); }
  // Reads everything buffered; the Slices are dropped at once.
  void Drain() {
    auto d = conn->Read(SIZE_MAX);
    if (d.ok()) data += d->ToString();
  }
};

class DriverTest : public ::testing::Test {
 protected:
  void Start(VsockDriverOptions options = {}) {
    VsockDeviceOptions d;
    d.host.guest_cid = kGuestCid;
    auto device = VsockDevice::Create(d, reactor_);
    ASSERT_THAT(device, IsOk());
    device_ = *std::move(device);
    auto bus = std::make_unique<DirectBus>(device_.get());
    bus_ = bus.get();
    auto driver = VsockDriver::Create(std::move(bus), reactor_, options);
    ASSERT_THAT(driver, IsOk());
    driver_ = *std::move(driver);
    Run();
  }
  void Run() { reactor_.RunUntilIdle(20000); }

  // A host listener on |port| whose connections land in host_peers_.
  std::unique_ptr<transport::Listener> HostListen(uint32_t port) {
    auto listener = device_->host().Listen(port);
    EXPECT_THAT(listener, IsOk());
    (*listener)->SetAcceptHandler([this](std::unique_ptr<Connection> c) {
      host_peers_.push_back(std::make_unique<Peer>());
      host_peers_.back()->Attach(std::move(c));
    });
    return *std::move(listener);
  }

  // A guest connection to host |port|, run until it settles.
  std::unique_ptr<Peer> GuestConnect(uint32_t port) {
    auto connector = driver_->ConnectorTo(kCidHost, port);
    EXPECT_THAT(connector, IsOk());
    auto conn = (*connector)->Connect();
    EXPECT_THAT(conn, IsOk());
    auto peer = std::make_unique<Peer>();
    if (conn.ok()) peer->Attach(*std::move(conn));
    Run();
    return peer;
  }

  // Sends |bytes| from |from| to |to| under flow control, serializing into
  // the sender's write buffers (|pool|) or into heap Slices.
  // |chunks| writes of 4000 bytes (Pattern(4000, i)) from |host| to |guest|,
  // each read at once and held by the application; returns what it holds.
  std::vector<SliceChain> SendAndHold(Peer& host, Peer& guest, int chunks) {
    std::vector<SliceChain> held;
    for (int i = 0; i < chunks; ++i) {
      SliceChain chunk(Slice::Copy(Pattern(4000, i)));
      EXPECT_THAT(host.conn->Write(chunk), IsOk());
      Run();
      auto data = guest.conn->Read(SIZE_MAX);
      EXPECT_THAT(data, IsOk());
      if (!data.ok()) break;
      EXPECT_TRUE(data->ToString() == Pattern(4000, i)) << i;
      held.push_back(*std::move(data));
    }
    return held;
  }

  void Transfer(Peer& from, Peer& to, const std::string& bytes, bool pool) {
    size_t offered = 0;
    SliceChain pending;
    const size_t want = to.data.size() + bytes.size();
    for (int i = 0; i < 100000 && to.data.size() < want; ++i) {
      if (pending.empty() && offered < bytes.size()) {
        const size_t n = std::min<size_t>(bytes.size() - offered, 96 * 1024);
        uint8_t* data = nullptr;
        Slice s = pool ? from.conn->AllocateWriteBuffer(n, &data) : Slice::Allocate(n, &data);
        std::memcpy(data, bytes.data() + offered, n);
        pending.Append(std::move(s));
        offered += n;
      }
      if (!pending.empty()) {
        ASSERT_THAT(from.conn->Write(pending), IsOk());
      }
      Run();
      to.Drain();
      Run();
    }
    ASSERT_EQ(to.data.size(), want);
  }

  void ExpectTxBlocksFreeBeforeTheReply(DriverNotifyMode mode);

  io::ManualReactor reactor_;
  std::unique_ptr<VsockDevice> device_;
  DirectBus* bus_ = nullptr;
  std::vector<std::unique_ptr<Peer>> host_peers_;
  std::unique_ptr<VsockDriver> driver_;
};

TEST_F(DriverTest, BringsTheDeviceUp) {
  Start();
  EXPECT_TRUE(driver_->up());
  EXPECT_EQ(driver_->guest_cid(), kGuestCid);
  EXPECT_EQ(bus_->sessions(), 1);
  EXPECT_EQ(driver_->stats().bring_ups, 1u);
  EXPECT_THAT(driver_->ConnectorTo(5, 1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(DriverTest, GuestConnectsAndMovesDataBothWaysWithoutCopies) {
  Start();
  auto listener = HostListen(5000);
  auto guest = GuestConnect(5000);
  ASSERT_TRUE(guest->Saw(Type::kConnected));
  ASSERT_EQ(host_peers_.size(), 1u);
  Peer& host = *host_peers_[0];
  EXPECT_EQ(guest->conn->peer_address(), "vsock:2:5000");

  const std::string up = Pattern(4 << 20, 1);
  Transfer(*guest, host, up, /*pool=*/true);
  EXPECT_TRUE(host.data == up);
  EXPECT_EQ(guest->conn->stats().tx_bytes_copied, 0u);
  EXPECT_GE(driver_->stats().tx_zero_copy_bytes, up.size());

  const std::string down = Pattern(4 << 20, 2);
  Transfer(host, *guest, down, /*pool=*/false);
  EXPECT_TRUE(guest->data == down);
  EXPECT_EQ(guest->conn->stats().rx_bytes_copied, 0u);
  EXPECT_EQ(guest->conn->stats().bytes_read, down.size());
  EXPECT_EQ(driver_->stats().violations, 0u);
}

TEST_F(DriverTest, WritesFromOrdinaryMemoryAreCopiedAndCounted) {
  Start();
  auto listener = HostListen(5000);
  auto guest = GuestConnect(5000);
  ASSERT_EQ(host_peers_.size(), 1u);
  const std::string bytes = Pattern(100 * 1024, 3);
  Transfer(*guest, *host_peers_[0], bytes, /*pool=*/false);
  EXPECT_TRUE(host_peers_[0]->data == bytes);
  EXPECT_EQ(guest->conn->stats().tx_bytes_copied, bytes.size());
}

TEST_F(DriverTest, HostConnectsToAGuestListener) {
  Start();
  std::vector<std::unique_ptr<Peer>> accepted;
  auto listener = driver_->Listen(6000);
  ASSERT_THAT(listener, IsOk());
  EXPECT_EQ((*listener)->address(), "vsock:3:6000");
  (*listener)->SetAcceptHandler([&](std::unique_ptr<Connection> c) {
    accepted.push_back(std::make_unique<Peer>());
    accepted.back()->Attach(std::move(c));
  });
  Peer host;
  auto conn = device_->host().ConnectorTo(6000)->Connect();
  ASSERT_THAT(conn, IsOk());
  host.Attach(*std::move(conn));
  Run();
  ASSERT_TRUE(host.Saw(Type::kConnected));
  ASSERT_EQ(accepted.size(), 1u);
  Transfer(host, *accepted[0], Pattern(300000, 4), false);
  Transfer(*accepted[0], host, Pattern(300000, 5), true);
  EXPECT_TRUE(host.data == Pattern(300000, 5));
  // Half-close from the guest: the host sees EOF, and still sends.
  ASSERT_THAT(accepted[0]->conn->ShutdownWrite(), IsOk());
  Run();
  EXPECT_TRUE(host.Saw(Type::kPeerShutdown));
  host.Drain();
  EXPECT_TRUE(host.conn->AtEof());
  Transfer(host, *accepted[0], "after half-close", false);
  ASSERT_THAT(host.conn->ShutdownWrite(), IsOk());
  Run();
  EXPECT_TRUE(accepted[0]->Saw(Type::kPeerShutdown));
  accepted[0]->Drain();
  EXPECT_TRUE(accepted[0]->conn->AtEof());
}

TEST_F(DriverTest, ConnectToAPortNobodyListensOnIsRefused) {
  Start();
  auto guest = GuestConnect(7000);
  EXPECT_FALSE(guest->Saw(Type::kConnected));
  EXPECT_TRUE(guest->Saw(Type::kClosed));
  EXPECT_THAT(guest->closed, StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(DriverTest, DeviceLossResetsConnectionsAndTheDriverReconnects) {
  Start();
  auto host_listener = HostListen(5000);
  auto guest_listener = driver_->Listen(6000);
  ASSERT_THAT(guest_listener, IsOk());
  std::vector<std::unique_ptr<Connection>> accepted;
  (*guest_listener)->SetAcceptHandler(
      [&](std::unique_ptr<Connection> c) { accepted.push_back(std::move(c)); });
  auto guest = GuestConnect(5000);
  ASSERT_TRUE(guest->Saw(Type::kConnected));
  // A payload the application still holds when the device goes.
  ASSERT_EQ(host_peers_.size(), 1u);
  const std::string held_bytes = Pattern(5000, 6);
  SliceChain to_send(Slice::Copy(held_bytes));
  ASSERT_THAT(host_peers_[0]->conn->Write(to_send), IsOk());
  Run();
  auto held = guest->conn->Read(SIZE_MAX);
  ASSERT_THAT(held, IsOk());
  ASSERT_EQ(held->size(), held_bytes.size());

  bus_->set_reachable(false);
  bus_->HangUp();
  Run();
  EXPECT_FALSE(driver_->up());
  EXPECT_EQ(guest->conn->state(), ConnectionState::kClosed);
  EXPECT_THAT(guest->closed, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT((*driver_->ConnectorTo(kCidHost, 5000))->Connect(),
              StatusIs(absl::StatusCode::kUnavailable));
  reactor_.AdvanceTime(absl::Milliseconds(100));
  EXPECT_FALSE(driver_->up());
  EXPECT_GE(driver_->stats().failed_bring_ups, 2u);

  bus_->set_reachable(true);
  reactor_.AdvanceTime(absl::Seconds(2));
  Run();
  ASSERT_TRUE(driver_->up());
  EXPECT_EQ(bus_->sessions(), 2);
  EXPECT_EQ(driver_->stats().device_losses, 1u);
  // The device announces itself with TRANSPORT_RESET (it had a session).
  EXPECT_EQ(driver_->stats().transport_resets, 1u);
  EXPECT_TRUE(held->ToString() == held_bytes) << "held rx buffer changed or unmapped";
  held->Clear();

  // Both directions work again, and the guest listener survived.
  auto again = GuestConnect(5000);
  EXPECT_TRUE(again->Saw(Type::kConnected));
  auto conn = device_->host().ConnectorTo(6000)->Connect();
  ASSERT_THAT(conn, IsOk());
  Peer host;
  host.Attach(*std::move(conn));
  Run();
  EXPECT_TRUE(host.Saw(Type::kConnected));
  EXPECT_EQ(accepted.size(), 1u);
}

TEST_F(DriverTest, HeldRxBuffersAreCopiedPastHalfTheRing) {
  VsockDriverOptions options;
  options.queue_size = 16;
  options.rx_buffer_size = 4096;
  Start(options);
  auto listener = HostListen(5000);
  auto guest = GuestConnect(5000);
  ASSERT_EQ(host_peers_.size(), 1u);
  std::vector<SliceChain> held = SendAndHold(*host_peers_[0], *guest, 40);
  ASSERT_EQ(held.size(), 40u);
  // 16 buffers (the ring's size is below rx_buffers): 8 lent, 32 copied.
  EXPECT_EQ(guest->conn->stats().rx_bytes_copied, 32u * 4000);
}

TEST_F(DriverTest, PostsRxBuffersNotRingEntriesAndCopiesPastHalfOfThem) {
  // A 64-entry ring with 8 rx buffers: 4 payloads are lent, the other 36
  // are copied because the application holds half the buffers.
  VsockDriverOptions options;
  options.queue_size = 64;
  options.rx_buffer_size = 4096;
  options.rx_buffers = 8;
  Start(options);
  auto listener = HostListen(5000);
  auto guest = GuestConnect(5000);
  ASSERT_EQ(host_peers_.size(), 1u);
  std::vector<SliceChain> held = SendAndHold(*host_peers_[0], *guest, 40);
  ASSERT_EQ(held.size(), 40u);
  EXPECT_EQ(guest->conn->stats().rx_bytes_copied, 36u * 4000);
  held.clear();
  Run();
  Transfer(*host_peers_[0], *guest, Pattern(1 << 20, 3), false);
  Transfer(*guest, *host_peers_[0], Pattern(1 << 20, 4), true);
  EXPECT_EQ(driver_->stats().device_losses, 0u);
}

// The guest sends 256 KiB from its tx pool; the host reads it (the device
// returns the chains) and answers in the same turn. When the answer reaches
// the guest application, the pool blocks must be free already: a streaming
// writer serializes its next message right there, and would otherwise take
// fresh pool pages while the old blocks wait to be reaped.
void DriverTest::ExpectTxBlocksFreeBeforeTheReply(DriverNotifyMode mode) {
  VsockDriverOptions options;
  options.notify_mode = mode;
  Start(options);
  auto listener = HostListen(5000);
  auto guest = GuestConnect(5000);
  ASSERT_EQ(host_peers_.size(), 1u);
  Peer& host = *host_peers_[0];
  size_t in_use_at_reply = SIZE_MAX;
  guest->conn->SetEventHandler([&](const ConnectionEvent& e) {
    if (e.type == Type::kReadable && in_use_at_reply == SIZE_MAX) {
      in_use_at_reply = driver_->stats().tx_pool_in_use;
    }
  });
  {
    SliceChain out;
    for (int i = 0; i < 4; ++i) {
      uint8_t* data = nullptr;
      out.Append(guest->conn->AllocateWriteBuffer(64 * 1024, &data));
      std::memset(data, 'g', 64 * 1024);
    }
    ASSERT_THAT(guest->conn->Write(out), IsOk());
  }
  Run();
  // The device holds the chains for the host application.
  EXPECT_GE(driver_->stats().tx_held_bytes, 256u * 1024);
  host.Drain();
  ASSERT_EQ(host.data.size(), 256u * 1024);
  SliceChain ack(Slice::Copy(std::string("ack")));
  ASSERT_THAT(host.conn->Write(ack), IsOk());
  Run();
  ASSERT_NE(in_use_at_reply, SIZE_MAX) << "the reply never arrived";
  EXPECT_LT(in_use_at_reply, 64u * 1024);
  EXPECT_EQ(driver_->stats().tx_held_bytes, 0u);
}

TEST_F(DriverTest, TxBlocksAreFreeBeforeTheReplyInInterruptMode) {
  ExpectTxBlocksFreeBeforeTheReply(DriverNotifyMode::kInterrupt);
}

TEST_F(DriverTest, TxBlocksAreFreeBeforeTheReplyInPollMode) {
  ExpectTxBlocksFreeBeforeTheReply(DriverNotifyMode::kPoll);
}

TEST_F(DriverTest, MoreConnectionsThanTxDescriptorsWaitForTheRing) {
  // A 16-entry tx ring and 64 connects: the REQUESTs queue for
  // descriptors instead of failing the session.
  VsockDriverOptions options;
  options.queue_size = 16;
  Start(options);
  auto listener = HostListen(5000);
  std::vector<std::unique_ptr<Peer>> guests;
  for (int i = 0; i < 64; ++i) {
    auto conn = (*driver_->ConnectorTo(kCidHost, 5000))->Connect();
    ASSERT_THAT(conn, IsOk());
    guests.push_back(std::make_unique<Peer>());
    guests.back()->Attach(*std::move(conn));
  }
  Run();
  for (auto& g : guests) EXPECT_TRUE(g->Saw(Type::kConnected));
  EXPECT_EQ(host_peers_.size(), 64u);
  EXPECT_EQ(driver_->stats().device_losses, 0u);
  for (int i = 0; i < 64; ++i) {
    Transfer(*guests[i], *host_peers_[i], Pattern(5000, i), /*pool=*/i % 2 == 0);
  }
}

TEST_F(DriverTest, AdaptiveModePollsUnderLoadAndSleepsWhenIdle) {
  VsockDriverOptions options;
  options.notify_mode = DriverNotifyMode::kAdaptive;
  options.adaptive_spin = 16;
  Start(options);
  auto listener = HostListen(5000);
  auto guest = GuestConnect(5000);
  ASSERT_TRUE(guest->Saw(Type::kConnected));
  ASSERT_EQ(host_peers_.size(), 1u);
  Transfer(*guest, *host_peers_[0], Pattern(1 << 20, 8), true);
  Transfer(*host_peers_[0], *guest, Pattern(1 << 20, 9), false);
  EXPECT_GT(driver_->stats().polls, 0u);
  // Idle: the driver went back to sleep (no endless polling).
  const uint64_t polls = driver_->stats().polls;
  reactor_.RunUntilIdle(1000);
  EXPECT_EQ(driver_->stats().polls, polls);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc

namespace vrpc {
namespace vsock {
namespace {

TEST_F(DriverTest, EchoClientAgainstAHostEcho) {
  Start();
  auto listener = HostListen(5000);
  bool done = false;
  absl::Status result;
  auto connector = driver_->ConnectorTo(kCidHost, 5000);
  ASSERT_THAT(connector, IsOk());
  EchoClient client(**connector, 3 << 20, [&](absl::Status s) {
    done = true;
    result = s;
  });
  for (int i = 0; i < 2000 && !done; ++i) {
    Run();
    for (auto& peer : host_peers_) {
      // Echo what arrived; half-close after the peer's EOF.
      auto data = peer->conn->Read(SIZE_MAX);
      if (data.ok() && !data->empty()) {
        SliceChain chain = *std::move(data);
        while (!chain.empty()) {
          ASSERT_THAT(peer->conn->Write(chain), IsOk());
          if (!chain.empty()) Run();
        }
      }
    }
  }
  ASSERT_TRUE(done);
  EXPECT_THAT(result, IsOk());
  EXPECT_EQ(client.received(), 3u << 20);
  EXPECT_EQ(client.connection()->stats().tx_bytes_copied, 0u);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
