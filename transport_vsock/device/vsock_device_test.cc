// The vsock device end to end inside one process: a real VsockDevice behind
// a real vhost_user::Backend (QEMU's messages from a ScriptedFrontend over a
// socketpair), memfd guest RAM, real eventfds, and a GuestDriver playing the
// guest's rings. The device runs on a ManualReactor, so every reactor turn
// is explicit.
#include "transport_vsock/device/vsock_device.h"

#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/manual_reactor.h"
#include "core/transport/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/device/testing/guest_driver.h"
#include "transport_vsock/device/testing/host_harness.h"
#include "transport_vsock/vhost_user/testing/backend_harness.h"
#include "transport_vsock/vhost_user/testing/resources.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace {

using testing::GuestDriver;
using testing::GuestHeader;
using testing::kDriverGuestCid;
using testing::kEventRing;
using testing::kRxRing;
using testing::kTxRing;
using testing::Pattern;
using testing::RxPacket;
using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;
using vhost_user::testing::BackendHarness;
using vhost_user::testing::CountMappings;
using vhost_user::testing::CountOpenFds;

constexpr uint32_t kPort = 5000;
constexpr uint32_t kRxSize = 4096;
constexpr uint32_t kRoom = kRxSize - kHeaderSize;  // payload per rx buffer

// Reads (and so resets) an eventfd's counter; 0 when it was not signalled.
uint64_t TakeCount(int fd) {
  uint64_t n = 0;
  return ::read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

class VsockDeviceTest : public ::testing::Test {
 protected:
  // An accepted host connection and the events it reported.
  struct Accepted {
    std::unique_ptr<Connection> conn;
    std::vector<ConnectionEvent> events;
    bool Closed(absl::StatusCode code) const {
      for (const ConnectionEvent& e : events) {
        if (e.type == ConnectionEventType::kClosed && e.status.code() == code) return true;
      }
      return false;
    }
  };

  void Create(VsockDeviceOptions options = {}) {
    options.host.guest_cid = kDriverGuestCid;
    VRPC_ASSERT_OK_AND_ASSIGN(device_, VsockDevice::Create(options, reactor_));
    BackendHarness::Options h;
    h.device = device_.get();
    h.ram_size = 16 << 20;
    harness_ = std::make_unique<BackendHarness>(h);
    guest_ = std::make_unique<GuestDriver>(*harness_);
    fds_ = CountOpenFds();
    mappings_ = CountMappings("vrpc-guest-ram");
  }

  // The guest initializes |rings|, QEMU starts them, the guest posts
  // |rx_buffers| rx buffers.
  void StartSession(uint32_t rings, size_t rx_buffers = 16) {
    guest_->Init(rings);
    VRPC_ASSERT_OK(testing::StartVsockSession(*harness_, rings));
    if (rx_buffers > 0) {
      VRPC_ASSERT_OK(guest_->PostRx(rx_buffers, kRxSize));
    }
    Run();
  }

  void Run() { reactor_.RunUntilIdle(); }

  void Listen(uint32_t port) {
    VRPC_ASSERT_OK_AND_ASSIGN(listener_, device_->host().Listen(port));
    listener_->SetAcceptHandler([this](std::unique_ptr<Connection> c) {
      auto a = std::make_unique<Accepted>();
      Accepted* raw = a.get();
      c->SetEventHandler([raw](const ConnectionEvent& e) { raw->events.push_back(e); });
      a->conn = std::move(c);
      accepted_.push_back(std::move(a));
    });
  }

  std::vector<RxPacket> TakeRx() {
    absl::StatusOr<std::vector<RxPacket>> rx = guest_->TakeRx();
    EXPECT_THAT(rx, IsOk());
    return rx.ok() ? *std::move(rx) : std::vector<RxPacket>();
  }
  std::vector<uint16_t> TakeTxUsed() {
    absl::StatusOr<std::vector<uint16_t>> used = guest_->TakeTxUsed();
    EXPECT_THAT(used, IsOk());
    return used.ok() ? *std::move(used) : std::vector<uint16_t>();
  }

  // The guest connects from |src_port| to the listener on kPort; returns
  // the host's accepted connection (null, with failures, otherwise).
  Accepted* Connect(uint32_t src_port, uint32_t buf_alloc = 256 * 1024) {
    const size_t before = accepted_.size();
    EXPECT_THAT(guest_->Send(GuestHeader(Op::kRequest, src_port, kPort, buf_alloc), ""), IsOk());
    Run();
    std::vector<RxPacket> rx = TakeRx();
    EXPECT_EQ(rx.size(), 1u);
    if (rx.size() != 1 || accepted_.size() != before + 1) return nullptr;
    const Header& h = rx[0].header;
    EXPECT_EQ(h.op_code(), Op::kResponse);
    EXPECT_EQ(h.src_cid, kCidHost);
    EXPECT_EQ(h.dst_cid, kDriverGuestCid);
    EXPECT_EQ(h.src_port, kPort);
    EXPECT_EQ(h.dst_port, src_port);
    return accepted_.back().get();
  }

  // Everything |c| has buffered, its Slices dropped at once.
  static std::string ReadAll(Connection& c) {
    absl::StatusOr<SliceChain> data = c.Read(SIZE_MAX);
    EXPECT_THAT(data, IsOk());
    return data.ok() ? data->ToString() : "";
  }

  // Ends the frontend session and checks that the device let go of every
  // descriptor and mapping it was given (the harness's own are baseline).
  void EndSessionAndExpectReleased() {
    harness_->Reconnect();
    Run();
    EXPECT_EQ(CountOpenFds(), fds_) << "descriptor leak";
    EXPECT_EQ(CountMappings("vrpc-guest-ram"), mappings_) << "mapping leak";
  }

  io::ManualReactor reactor_;
  std::unique_ptr<VsockDevice> device_;
  std::unique_ptr<BackendHarness> harness_;
  std::unique_ptr<GuestDriver> guest_;
  std::unique_ptr<transport::Listener> listener_;
  std::vector<std::unique_ptr<Accepted>> accepted_;
  size_t fds_ = 0;
  size_t mappings_ = 0;
};

// ---------------------------------------------------------------------------
// 1. Happy path, with 2 rings (QEMU keeps the event queue) and with 3.

class RingCountTest : public VsockDeviceTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(RingCountTest, ConnectAndSendZeroCopyChainReturnsWhenHostDropsSlices) {
  Create();
  StartSession(GetParam());
  if (GetParam() == 3) {
    VRPC_ASSERT_OK(guest_->PostEvents(2));
  }
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  EXPECT_GT(TakeCount(harness_->call_fd(kRxRing)), 0u) << "guest not interrupted for rx";
  EXPECT_EQ(TakeTxUsed().size(), 1u) << "the REQUEST chain (no payload) comes back at once";

  const std::string data = Pattern(3000, 1);
  VRPC_ASSERT_OK_AND_ASSIGN(uint16_t head, guest_->Send(GuestHeader(Op::kRw, 1234, kPort), data));
  const uint64_t payload_addr = guest_->last_tx()[1].addr;
  Run();
  EXPECT_EQ(device_->stats().zero_copy_bytes, data.size());
  EXPECT_EQ(device_->stats().copied_bytes, 0u);
  EXPECT_TRUE(TakeTxUsed().empty()) << "chain returned while the engine holds its payload";

  VRPC_ASSERT_OK_AND_ASSIGN(SliceChain got, a->conn->Read(SIZE_MAX));
  EXPECT_EQ(got.ToString(), data);
  EXPECT_EQ(a->conn->stats().rx_bytes_copied, 0u);
  // A view into guest memory, not a copy: the guest's byte shows through.
  ASSERT_FALSE(got.slices().empty());
  guest_->At(payload_addr)[0] ^= 0xff;
  EXPECT_EQ(got.slices()[0].data()[0], static_cast<uint8_t>(data[0] ^ 0xff));
  Run();
  EXPECT_TRUE(TakeTxUsed().empty()) << "chain returned while the application holds its payload";

  got.Clear();
  Run();
  EXPECT_THAT(TakeTxUsed(), ::testing::ElementsAre(head));
  EXPECT_GT(TakeCount(harness_->call_fd(kTxRing)), 0u) << "guest not interrupted for tx";
  if (GetParam() == 3) {
    // A first session announces no TRANSPORT_RESET.
    VRPC_ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> events, guest_->TakeEvents());
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(device_->stats().transport_resets_sent, 0u);
  }
  EXPECT_FALSE(device_->broken());
  EndSessionAndExpectReleased();
}

INSTANTIATE_TEST_SUITE_P(Rings, RingCountTest, ::testing::Values(2u, 3u));

// A payload shorter than copy_below (an RPC's small frames) is copied out
// and its chain comes back in the same turn; one of copy_below bytes is
// still handed over in place.
TEST_F(VsockDeviceTest, SmallPayloadIsCopiedAndItsChainReturnsAtOnce) {
  VsockDeviceOptions options;
  options.copy_below = 256;
  Create(options);
  StartSession(2);
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  TakeTxUsed();

  const std::string small = Pattern(255, 2);
  VRPC_ASSERT_OK_AND_ASSIGN(uint16_t head, guest_->Send(GuestHeader(Op::kRw, 1234, kPort), small));
  const uint64_t payload_addr = guest_->last_tx()[1].addr;
  Run();
  EXPECT_THAT(TakeTxUsed(), ::testing::ElementsAre(head)) << "held although copied";
  EXPECT_EQ(device_->stats().copied_bytes, small.size());
  EXPECT_EQ(device_->stats().zero_copy_bytes, 0u);
  guest_->At(payload_addr)[0] ^= 0xff;  // the guest reuses its buffer
  VRPC_ASSERT_OK_AND_ASSIGN(SliceChain got, a->conn->Read(SIZE_MAX));
  EXPECT_EQ(got.ToString(), small) << "the copy must not see the guest's later writes";
  EXPECT_EQ(a->conn->stats().rx_bytes_copied, small.size());

  const std::string big = Pattern(256, 3);
  VRPC_ASSERT_OK_AND_ASSIGN(head, guest_->Send(GuestHeader(Op::kRw, 1234, kPort), big));
  Run();
  EXPECT_TRUE(TakeTxUsed().empty()) << "chain returned while the engine holds its payload";
  EXPECT_EQ(device_->stats().zero_copy_bytes, big.size());
  VRPC_ASSERT_OK_AND_ASSIGN(got, a->conn->Read(SIZE_MAX));
  EXPECT_EQ(got.ToString(), big);
  got.Clear();
  Run();
  EXPECT_THAT(TakeTxUsed(), ::testing::ElementsAre(head));
  EXPECT_FALSE(device_->broken());
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 2. Header and payload split across descriptors however the guest likes.

TEST_F(VsockDeviceTest, HeaderAndPayloadSplitAnywhereArriveByteExact) {
  Create();
  StartSession(2);
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  (void)TakeTxUsed();
  const std::vector<std::vector<uint32_t>> splits = {
      {1, 43},          // header 1 + 43, then payload
      {43, 1},          // header 43 + 1
      {20, 20, 4},      // header across 3 descriptors
      {44 + 300},       // header + payload in one (Linux 6.2+)
      {100},            // header + the payload's start, then its rest
      {1, 1, 1, 41, 150, 1},
  };
  int seed = 10;
  for (const std::vector<uint32_t>& split : splits) {
    SCOPED_TRACE(::testing::PrintToString(split));
    const std::string data = Pattern(300, ++seed);
    VRPC_ASSERT_OK_AND_ASSIGN(uint16_t head,
                              guest_->Send(GuestHeader(Op::kRw, 1234, kPort), data, split));
    Run();
    EXPECT_EQ(ReadAll(*a->conn), data);
    Run();
    EXPECT_THAT(TakeTxUsed(), ::testing::ElementsAre(head));
  }
  EXPECT_EQ(device_->stats().malformed_chains, 0u);
  EXPECT_EQ(device_->host().engine().stats().malformed, 0u);
  EXPECT_EQ(a->conn->state(), ConnectionState::kOpen);
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 3. Host -> guest payloads larger than the guest's rx buffers.

TEST_F(VsockDeviceTest, LargeHostWriteIsSplitOverRxBuffers) {
  Create();
  StartSession(2, /*rx_buffers=*/24);
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  const std::string data = Pattern(64 * 1024, 3);
  SliceChain out(Slice::Copy(data));
  VRPC_ASSERT_OK_AND_ASSIGN(size_t written, a->conn->Write(out));
  EXPECT_EQ(written, data.size());
  Run();
  std::vector<RxPacket> rx = TakeRx();
  const size_t want = (data.size() + kRoom - 1) / kRoom;  // 17
  ASSERT_EQ(rx.size(), want);
  std::string reassembled;
  for (size_t i = 0; i < rx.size(); ++i) {
    const Header& h = rx[i].header;
    EXPECT_EQ(h.op_code(), Op::kRw);
    EXPECT_EQ(h.src_port, kPort);
    EXPECT_EQ(h.dst_port, 1234u);
    EXPECT_EQ(h.len, i + 1 < rx.size() ? kRoom : data.size() - (want - 1) * kRoom) << i;
    reassembled += rx[i].payload;
  }
  EXPECT_EQ(reassembled, data);
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 4. Identity: the guest cannot choose whom it speaks as, or to.

TEST_F(VsockDeviceTest, SpoofedAddressesAreNeverDelivered) {
  Create();
  StartSession(2);
  Listen(kPort);
  Header other_guest = GuestHeader(Op::kRequest, 1234, kPort);
  other_guest.src_cid = kDriverGuestCid + 1;
  Header upper_bits = GuestHeader(Op::kRequest, 1235, kPort);
  upper_bits.src_cid = kDriverGuestCid | (uint64_t{1} << 32);
  Header not_host = GuestHeader(Op::kRequest, 1236, kPort);
  not_host.dst_cid = 5;
  for (const Header& h : {other_guest, upper_bits, not_host}) {
    VRPC_ASSERT_OK(guest_->Send(h, "").status());
  }
  Run();
  EXPECT_TRUE(accepted_.empty());
  EXPECT_TRUE(TakeRx().empty()) << "spoofed packets are dropped silently";
  EXPECT_EQ(device_->host().engine().stats().dropped, 3u);
  EXPECT_EQ(TakeTxUsed().size(), 3u);
  EXPECT_FALSE(device_->broken());
  ASSERT_NE(Connect(1234), nullptr) << "the real guest still gets through";
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 5. Malformed chains and headers cost an RST at most; the device goes on.

TEST_F(VsockDeviceTest, MalformedChainsAndLengthsAreRefusedAndDeviceKeepsWorking) {
  Create();
  StartSession(2);
  Listen(kPort);

  // Shorter than a header: returned unused, nothing to answer.
  VRPC_ASSERT_OK_AND_ASSIGN(uint16_t short_head, guest_->SendBytes(std::string(20, 'x')));
  Run();
  EXPECT_EQ(device_->stats().malformed_chains, 1u);
  EXPECT_THAT(TakeTxUsed(), ::testing::ElementsAre(short_head));
  EXPECT_TRUE(TakeRx().empty());

  // len larger than the chain holds, and len over 64 KiB (with the bytes):
  // each connection is reset, both sides are told.
  struct Case {
    uint32_t port;
    uint32_t len;
    size_t bytes;
  };
  for (const Case& c : {Case{2000, 500, 100}, Case{2001, kMaxPacketPayload + 1,
                                                    kMaxPacketPayload + 1}}) {
    SCOPED_TRACE(c.len);
    Accepted* a = Connect(c.port);
    ASSERT_NE(a, nullptr);
    Header h = GuestHeader(Op::kRw, c.port, kPort);
    h.len = c.len;
    const std::array<uint8_t, kHeaderSize> raw = EncodeHeader(h);
    std::string bytes(reinterpret_cast<const char*>(raw.data()), raw.size());
    bytes += Pattern(c.bytes, 4);
    VRPC_ASSERT_OK(guest_->SendBytes(bytes, {kHeaderSize}).status());
    Run();
    std::vector<RxPacket> rx = TakeRx();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].header.op_code(), Op::kRst);
    EXPECT_EQ(rx[0].header.dst_port, c.port);
    EXPECT_TRUE(a->Closed(absl::StatusCode::kUnavailable));
    // Nothing of the refused packet is delivered: the reset is all there is.
    EXPECT_THAT(a->conn->Read(SIZE_MAX), StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_EQ(device_->host().engine().stats().malformed, 2u);

  // Later good packets work.
  Accepted* a = Connect(3000);
  ASSERT_NE(a, nullptr);
  const std::string data = Pattern(500, 5);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 3000, kPort), data).status());
  Run();
  EXPECT_EQ(ReadAll(*a->conn), data);
  EXPECT_FALSE(device_->broken());
  EXPECT_EQ(TakeCount(harness_->err_fd(kTxRing)), 0u);
  accepted_.clear();
  Run();
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 6. Ring violations latch the device broken until the frontend resets it.

struct RingViolation {
  const char* name;
  std::function<void(GuestDriver&)> corrupt;  // on the tx ring
};

void PrintTo(const RingViolation& v, std::ostream* os) { *os << v.name; }

class RingViolationTest : public VsockDeviceTest,
                          public ::testing::WithParamInterface<RingViolation> {};

TEST_P(RingViolationTest, LatchesBrokenTouchesNothingAndRecoversAfterReconnect) {
  Create();
  StartSession(2);
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  const uint64_t rx_packets = device_->stats().rx_packets;

  GetParam().corrupt(*guest_);
  guest_->Kick(kTxRing);
  Run();
  ASSERT_TRUE(device_->broken());
  EXPECT_GT(TakeCount(harness_->err_fd(kRxRing)), 0u);
  EXPECT_GT(TakeCount(harness_->err_fd(kTxRing)), 0u);

  // Buffers, kicks and host data while broken: the device writes nothing.
  VRPC_ASSERT_OK(guest_->PostRx(4, kRxSize));
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 1234, kPort), Pattern(200, 7)).status());
  const uint8_t* ram = harness_->ram().data();
  const std::string before(reinterpret_cast<const char*>(ram), harness_->ram().size());
  SliceChain out(Slice::Copy(Pattern(1000, 6)));
  (void)a->conn->Write(out);
  guest_->Kick(kRxRing);
  guest_->Kick(kTxRing);
  Run();
  EXPECT_EQ(std::memcmp(before.data(), ram, before.size()), 0) << "guest RAM written while broken";
  EXPECT_EQ(device_->stats().rx_packets, rx_packets);
  EXPECT_TRUE(TakeRx().empty());

  // The frontend reconnects and re-initializes: everything works again.
  harness_->Reconnect();
  Run();
  EXPECT_TRUE(a->Closed(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(device_->broken());
  StartSession(2);
  Accepted* b = Connect(1235);
  ASSERT_NE(b, nullptr);
  const std::string data = Pattern(700, 8);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 1235, kPort), data).status());
  Run();
  EXPECT_EQ(ReadAll(*b->conn), data);
  EXPECT_FALSE(device_->broken());
  accepted_.clear();
  Run();
  EndSessionAndExpectReleased();
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, RingViolationTest,
    ::testing::Values(
        RingViolation{"AvailIdxLie",
                  [](GuestDriver& g) {
                    g.RawSetAvailIdx(kTxRing, static_cast<uint16_t>(g.RawAvailIdx(kTxRing) +
                                                                    129));
                  }},
        RingViolation{"DescriptorLoop",
                  [](GuestDriver& g) {
                    const uint64_t buf = g.Allocate(64);
                    g.RawSetDesc(kTxRing, 100, buf, 64, virtqueue::kDescFlagNext, 101);
                    g.RawSetDesc(kTxRing, 101, buf, 64, virtqueue::kDescFlagNext, 100);
                    g.RawPushAvail(kTxRing, 100);
                  }},
        RingViolation{"HeadOutOfRange", [](GuestDriver& g) { g.RawPushAvail(kTxRing, 200); }},
        RingViolation{"BufferInMemoryHole",
                  [](GuestDriver& g) {
                    g.RawSetDesc(kTxRing, 100, 0xa0000, 64, 0, 0);
                    g.RawPushAvail(kTxRing, 100);
                  }}),
    [](const ::testing::TestParamInfo<RingViolation>& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// 7. Work per kick is bounded: tx_budget chains per reactor turn.

TEST_F(VsockDeviceTest, KickWithManyChainsIsSpreadOverTurnsByBudget) {
  VsockDeviceOptions options;
  options.tx_budget = 4;
  Create(options);
  StartSession(2);
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  const uint64_t base = device_->stats().tx_packets;
  guest_->set_auto_kick(false);
  std::string sent;
  for (int i = 0; i < 10; ++i) {
    const std::string data = Pattern(200, 20 + i);
    VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 1234, kPort), data).status());
    sent += data;
  }
  guest_->Kick(kTxRing);
  for (uint64_t want : {4u, 8u, 10u}) {
    reactor_.RunUntilIdle(/*max_rounds=*/1);
    EXPECT_EQ(device_->stats().tx_packets - base, want);
  }
  Run();
  EXPECT_EQ(device_->stats().tx_packets - base, 10u);
  EXPECT_EQ(ReadAll(*a->conn), sent);
  Run();
  EXPECT_EQ(TakeTxUsed().size(), 11u);  // the REQUEST and the 10 RWs
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 8. A guest that posts no rx buffers cannot make the host buffer without
// bound: host writes stop at the guest's credit, and tx pauses at
// max_pending_rx packets waiting for the guest.

TEST_F(VsockDeviceTest, NoRxBuffersBoundsHostBufferingUntilBuffersArrive) {
  VsockDeviceOptions options;
  options.max_pending_rx = 4;
  Create(options);
  StartSession(2, /*rx_buffers=*/0);
  Listen(kPort);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRequest, 1234, kPort, 64 * 1024), "").status());
  Run();
  ASSERT_EQ(accepted_.size(), 1u);
  Connection& c = *accepted_[0]->conn;
  const std::string data = Pattern(1 << 20, 9);
  SliceChain out(Slice::Copy(data));
  VRPC_ASSERT_OK_AND_ASSIGN(size_t first, c.Write(out));
  EXPECT_EQ(first, 64u * 1024) << "the guest's credit bounds what the host takes";
  VRPC_ASSERT_OK_AND_ASSIGN(size_t second, c.Write(out));
  EXPECT_EQ(second, 0u);

  // Each REQUEST to a port nobody listens on earns an RST that must wait.
  constexpr int kRequests = 12;
  for (int i = 0; i < kRequests; ++i) {
    VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRequest, 3000 + i, 6000), "").status());
  }
  Run();
  const uint64_t paused_at = device_->stats().tx_packets;
  EXPECT_LE(paused_at, 1u + options.max_pending_rx);
  EXPECT_LT(paused_at, 1u + kRequests) << "tx did not pause";
  Run();
  EXPECT_EQ(device_->stats().tx_packets, paused_at);
  EXPECT_TRUE(TakeRx().empty());

  VRPC_ASSERT_OK(guest_->PostRx(64, kRxSize));
  Run();
  EXPECT_EQ(device_->stats().tx_packets, 1u + kRequests);
  std::string got;
  int rsts = 0, responses = 0;
  for (const RxPacket& p : TakeRx()) {
    if (p.header.op_code() == Op::kResponse) ++responses;
    if (p.header.op_code() == Op::kRst && p.header.src_port == 6000) ++rsts;
    if (p.header.op_code() == Op::kRw) got += p.payload;
  }
  EXPECT_EQ(responses, 1);
  EXPECT_EQ(rsts, kRequests);
  EXPECT_EQ(got, data.substr(0, first));
  EXPECT_EQ(TakeTxUsed().size(), 1u + kRequests);
  accepted_.clear();
  Run();
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 9 and 10. A frontend that goes away resets the host's connections; the
// next session's event ring carries VIRTIO_VSOCK_EVENT_TRANSPORT_RESET.

TEST_F(VsockDeviceTest, FrontendDisconnectResetsConnectionsAndKeepsHeldPayloadValid) {
  Create();
  StartSession(2);
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  const std::string data = Pattern(5000, 11);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 1234, kPort), data).status());
  Run();
  VRPC_ASSERT_OK_AND_ASSIGN(SliceChain held, a->conn->Read(SIZE_MAX));

  harness_->frontend().Close();  // QEMU exits
  EXPECT_THAT(harness_->Pump(), StatusIs(absl::StatusCode::kUnavailable));
  Run();
  EXPECT_TRUE(a->Closed(absl::StatusCode::kUnavailable));
  EXPECT_EQ(a->conn->state(), ConnectionState::kClosed);
  EXPECT_THAT(a->conn->status(), StatusIs(absl::StatusCode::kUnavailable));
  // The payload still points into (still mapped) guest memory; releasing
  // it after the session completes into nothing.
  EXPECT_EQ(held.ToString(), data);
  EXPECT_GT(CountMappings("vrpc-guest-ram"), mappings_);
  held.Clear();
  Run();
  accepted_.clear();
  Run();
  EndSessionAndExpectReleased();
}

TEST_F(VsockDeviceTest, SecondSessionAnnouncesTransportResetOnEventRing) {
  Create();
  StartSession(3);
  VRPC_ASSERT_OK(guest_->PostEvents(2));
  Listen(kPort);
  Accepted* a = Connect(1234);
  ASSERT_NE(a, nullptr);
  Run();
  VRPC_ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> first, guest_->TakeEvents());
  EXPECT_TRUE(first.empty()) << "no reset to announce in the first session";
  harness_->Reconnect();
  Run();
  EXPECT_TRUE(a->Closed(absl::StatusCode::kUnavailable));

  // The second session finds the guest's event buffer already posted (it
  // was kicked to the previous backend): no kick comes for it.
  guest_->Init(3);
  guest_->set_auto_kick(false);
  VRPC_ASSERT_OK(guest_->PostEvents(1));
  guest_->set_auto_kick(true);
  VRPC_ASSERT_OK(testing::StartVsockSession(*harness_, 3));
  VRPC_ASSERT_OK(guest_->PostRx(4, kRxSize));
  Run();
  VRPC_ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> events, guest_->TakeEvents());
  EXPECT_THAT(events, ::testing::ElementsAre(0u));  // TRANSPORT_RESET
  EXPECT_EQ(device_->stats().transport_resets_sent, 1u);
  EXPECT_GT(TakeCount(harness_->call_fd(kEventRing)), 0u);
  ASSERT_NE(Connect(1235), nullptr);
  accepted_.clear();
  Run();
  EndSessionAndExpectReleased();
}

// ---------------------------------------------------------------------------
// 11. Ring notify modes: polling needs no kick.

TEST_F(VsockDeviceTest, PollModeProcessesRingsWithoutKicks) {
  VsockDeviceOptions options;
  options.notify_mode = RingNotifyMode::kPoll;
  Create(options);
  guest_->Init(2);
  guest_->set_auto_kick(false);
  VRPC_ASSERT_OK(testing::StartVsockSession(*harness_, 2));
  VRPC_ASSERT_OK(guest_->PostRx(8, kRxSize));
  Listen(kPort);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRequest, 1234, kPort), "").status());
  reactor_.RunUntilIdle(/*max_rounds=*/20);
  ASSERT_EQ(accepted_.size(), 1u);
  std::vector<RxPacket> rx = TakeRx();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].header.op_code(), Op::kResponse);

  const std::string data = Pattern(600, 12);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 1234, kPort), data).status());
  reactor_.RunUntilIdle(/*max_rounds=*/20);
  EXPECT_EQ(ReadAll(*accepted_[0]->conn), data);
  EXPECT_GT(device_->stats().polls, 0u);
  for (uint32_t ring : {kRxRing, kTxRing}) {
    EXPECT_EQ(TakeCount(harness_->kick_fd(ring)), 0u) << "the test kicked after all";
  }
  accepted_.clear();
  reactor_.RunUntilIdle(/*max_rounds=*/20);
  EndSessionAndExpectReleased();
}

TEST_F(VsockDeviceTest, AdaptiveModePollsWhileBusyThenSleepsUntilKicked) {
  VsockDeviceOptions options;
  options.notify_mode = RingNotifyMode::kAdaptive;
  options.adaptive_idle_polls = 8;
  Create(options);
  StartSession(2);
  Listen(kPort);
  Accepted* a = Connect(1234);  // Run() returns: polling stopped when idle
  ASSERT_NE(a, nullptr);
  const uint64_t polls = device_->stats().polls;
  EXPECT_GT(polls, 0u);
  Run();
  EXPECT_EQ(device_->stats().polls, polls) << "still polling while idle";
  const std::string data = Pattern(600, 13);
  VRPC_ASSERT_OK(guest_->Send(GuestHeader(Op::kRw, 1234, kPort), data).status());
  Run();
  EXPECT_EQ(ReadAll(*a->conn), data) << "re-armed kick not honoured";
  accepted_.clear();
  Run();
  EndSessionAndExpectReleased();
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
