// Unit tests for Engine, driven packet by packet: the test plays the guest
// and the engine under test is the host side (CID 2) of guest CID 3.
#include "transport_vsock/protocol/engine.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kGuestCid = 3;
constexpr uint32_t kGuestPort = 5000;
constexpr uint32_t kHostPort = 9999;
const absl::Time kT0 = absl::UnixEpoch();

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeEngine(EngineConfig()); }

  void MakeEngine(EngineConfig config) {
    config.local_cid = kCidHost;
    config.peer_cid = kGuestCid;
    auto engine = Engine::Create(config);
    ASSERT_THAT(engine, IsOk());
    engine_ = *std::move(engine);
  }

  // A packet from the guest's kGuestPort to our |port|.
  Header FromGuest(Op op, uint32_t port = kHostPort, uint32_t len = 0) {
    Header h;
    h.src_cid = kGuestCid;
    h.dst_cid = kCidHost;
    h.src_port = kGuestPort;
    h.dst_port = port;
    h.len = len;
    h.type = static_cast<uint16_t>(SocketType::kStream);
    h.op = static_cast<uint16_t>(op);
    h.buf_alloc = guest_buf_alloc_;
    h.fwd_cnt = guest_fwd_cnt_;
    return h;
  }

  // Delivers |h| (with |payload|) and returns what the engine did.
  Actions Deliver(const Header& h, absl::string_view payload = {}) {
    Actions out;
    SliceChain chain;
    if (!payload.empty()) chain.Append(Slice::Copy(payload));
    engine_->OnPacket(h, std::move(chain), now_, out);
    return out;
  }

  Actions SendData(absl::string_view data, uint32_t port = kHostPort) {
    return Deliver(FromGuest(Op::kRw, port, static_cast<uint32_t>(data.size())), data);
  }

  // Guest connects to a listening host port; returns the accepted id.
  ConnId EstablishIncoming() {
    EXPECT_THAT(engine_->Listen(kHostPort, SocketType::kStream, 4), IsOk());
    Actions a = Deliver(FromGuest(Op::kRequest));
    EXPECT_EQ(a.packets.size(), 1u);
    auto id = engine_->Accept(kHostPort);
    EXPECT_TRUE(id.has_value());
    return id.value_or(ConnId{});
  }

  static std::vector<Op> Ops(const Actions& a) {
    std::vector<Op> ops;
    for (const Packet& p : a.packets) ops.push_back(p.header.op_code());
    return ops;
  }
  static std::vector<EventType> Types(const Actions& a) {
    std::vector<EventType> types;
    for (const Event& e : a.events) types.push_back(e.type);
    return types;
  }

  std::unique_ptr<Engine> engine_;
  absl::Time now_ = kT0;
  uint32_t guest_buf_alloc_ = 256 * 1024;
  uint32_t guest_fwd_cnt_ = 0;
};

// ---- The seed's connect flow, step by step ----

TEST_F(EngineTest, ConnectSendsRequestThenResponseEstablishes) {
  Actions a;
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId id, engine_->Connect(1234, SocketType::kStream, now_, a));
  ASSERT_EQ(a.packets.size(), 1u);
  const Header& req = a.packets[0].header;
  EXPECT_EQ(req.op_code(), Op::kRequest);
  EXPECT_EQ(req.src_cid, kCidHost);
  EXPECT_EQ(req.dst_cid, kGuestCid);
  EXPECT_EQ(req.dst_port, 1234u);
  EXPECT_EQ(req.type, static_cast<uint16_t>(SocketType::kStream));
  EXPECT_EQ(req.buf_alloc, 256u * 1024);
  EXPECT_EQ(req.fwd_cnt, 0u);
  EXPECT_EQ(req.len, 0u);
  EXPECT_THAT(engine_->GetInfo(id, now_)->state, ConnState::kConnecting);
  EXPECT_TRUE(a.events.empty());

  Header resp = FromGuest(Op::kResponse, req.src_port);
  resp.src_port = 1234;
  Actions b = Deliver(resp);
  EXPECT_THAT(Types(b), ElementsAre(EventType::kConnected));
  EXPECT_TRUE(b.packets.empty());
  auto info = engine_->GetInfo(id, now_);
  EXPECT_EQ(info->state, ConnState::kEstablished);
  EXPECT_EQ(info->credit.peer_credit, guest_buf_alloc_);
}

TEST_F(EngineTest, ListenerAnswersRequestWithResponse) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  Actions a = Deliver(FromGuest(Op::kRequest));
  ASSERT_THAT(Ops(a), ElementsAre(Op::kResponse));
  const Header& resp = a.packets[0].header;
  EXPECT_EQ(resp.src_port, kHostPort);
  EXPECT_EQ(resp.dst_port, kGuestPort);
  EXPECT_EQ(resp.dst_cid, kGuestCid);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].type, EventType::kIncoming);
  EXPECT_EQ(a.events[0].port, kHostPort);
  VRPC_ASSERT_OK_AND_ASSIGN(auto accepted, absl::StatusOr<std::optional<ConnId>>(
                                               engine_->Accept(kHostPort)));
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(engine_->GetInfo(*accepted, now_)->state, ConnState::kEstablished);
  EXPECT_FALSE(engine_->Accept(kHostPort).has_value());
}

TEST_F(EngineTest, RequestWithNoListenerIsAnsweredWithRst) {
  Actions a = Deliver(FromGuest(Op::kRequest, 4242));
  ASSERT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_EQ(a.packets[0].header.src_port, 4242u);
  EXPECT_EQ(a.packets[0].header.dst_port, kGuestPort);
  EXPECT_EQ(engine_->stats().refused, 1u);
}

TEST_F(EngineTest, RstWhileConnectingIsRefused) {
  Actions a;
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId id, engine_->Connect(1234, SocketType::kStream, now_, a));
  Header rst = FromGuest(Op::kRst, a.packets[0].header.src_port);
  rst.src_port = 1234;
  Actions b = Deliver(rst);
  ASSERT_THAT(Types(b), ElementsAre(EventType::kRefused));
  EXPECT_THAT(b.events[0].status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(b.packets.empty());  // never RST an RST
  EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kClosed);
}

TEST_F(EngineTest, ConnectTimeoutSendsRstAndResets) {
  Actions a;
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId id, engine_->Connect(1234, SocketType::kStream, now_, a));
  EXPECT_EQ(engine_->NextDeadline(), now_ + absl::Seconds(2));
  Actions early;
  engine_->OnTimer(now_ + absl::Milliseconds(1999), early);
  EXPECT_TRUE(early.empty());
  Actions b;
  engine_->OnTimer(now_ + absl::Seconds(2), b);
  EXPECT_THAT(Ops(b), ElementsAre(Op::kRst));
  ASSERT_THAT(Types(b), ElementsAre(EventType::kReset));
  EXPECT_THAT(b.events[0].status, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(engine_->NextDeadline().has_value());
  EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kClosed);
}

TEST_F(EngineTest, LateResponseAfterTimeoutGetsRst) {
  Actions a;
  VRPC_ASSERT_OK(engine_->Connect(1234, SocketType::kStream, now_, a).status());
  const uint32_t local = a.packets[0].header.src_port;
  engine_->OnTimer(now_ + absl::Seconds(3), a);
  Header resp = FromGuest(Op::kResponse, local);
  resp.src_port = 1234;
  EXPECT_THAT(Ops(Deliver(resp)), ElementsAre(Op::kRst));
}

// ---- Listener limits ----

TEST_F(EngineTest, BacklogFullIsRefusedAndRecovers) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 2));
  for (uint32_t i = 0; i < 2; ++i) {
    Header h = FromGuest(Op::kRequest);
    h.src_port = 100 + i;
    EXPECT_THAT(Ops(Deliver(h)), ElementsAre(Op::kResponse));
  }
  Header third = FromGuest(Op::kRequest);
  third.src_port = 102;
  EXPECT_THAT(Ops(Deliver(third)), ElementsAre(Op::kRst));
  ASSERT_TRUE(engine_->Accept(kHostPort).has_value());
  EXPECT_THAT(Ops(Deliver(third)), ElementsAre(Op::kResponse));
}

TEST_F(EngineTest, ConnectionLimitRefusesRequests) {
  EngineConfig config;
  config.max_connections = 1;
  MakeEngine(config);
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 8));
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest))), ElementsAre(Op::kResponse));
  Header second = FromGuest(Op::kRequest);
  second.src_port = kGuestPort + 1;
  EXPECT_THAT(Ops(Deliver(second)), ElementsAre(Op::kRst));
  Actions a;
  EXPECT_THAT(engine_->Connect(1, SocketType::kStream, now_, a),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(EngineTest, RequestOfTheWrongTypeIsRefused) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kSeqpacket, 4));
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest))), ElementsAre(Op::kRst));
}

TEST_F(EngineTest, UnlistenResetsConnectionsNotYetAccepted) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  Deliver(FromGuest(Op::kRequest));
  Actions a;
  engine_->Unlisten(kHostPort, a);
  EXPECT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_EQ(engine_->stats().connections, 0u);
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRw, kHostPort, 1), "x")), ElementsAre(Op::kRst));
}

TEST_F(EngineTest, ListenPortConflicts) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  EXPECT_THAT(engine_->Listen(kHostPort, SocketType::kStream, 4),
              StatusIs(absl::StatusCode::kAlreadyExists));
  Actions a;
  EXPECT_THAT(engine_->Connect(1, SocketType::kStream, now_, a, kHostPort),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(engine_->Listen(kPortAny, SocketType::kStream, 4),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(engine_->Listen(7, SocketType::kStream, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(EngineTest, EphemeralPortsAreDistinctAndSkipTakenOnes) {
  EngineConfig config;
  config.ephemeral_port_first = 2000;
  config.ephemeral_port_last = 2003;
  MakeEngine(config);
  VRPC_ASSERT_OK(engine_->Listen(2001, SocketType::kStream, 1));
  Actions a;
  std::vector<uint32_t> ports;
  for (int i = 0; i < 3; ++i) {
    VRPC_ASSERT_OK_AND_ASSIGN(ConnId id, engine_->Connect(1, SocketType::kStream, now_, a));
    ports.push_back(engine_->GetInfo(id, now_)->local_port);
  }
  EXPECT_THAT(ports, ElementsAre(2000, 2002, 2003));
  EXPECT_THAT(engine_->Connect(1, SocketType::kStream, now_, a),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

// ---- The any-port listener (hybrid forwarding decides per port) ----

TEST_F(EngineTest, AnyPortListenerDefersTheAnswer) {
  VRPC_ASSERT_OK(engine_->ListenAnyPort(SocketType::kStream, 4));
  Actions a = Deliver(FromGuest(Op::kRequest, 4321));
  EXPECT_THAT(Ops(a), IsEmpty());  // no answer yet
  ASSERT_THAT(Types(a), ElementsAre(EventType::kIncoming));
  EXPECT_EQ(a.events[0].port, 4321u);
  auto id = engine_->Accept(kPortAny);
  ASSERT_TRUE(id.has_value());
  auto info = engine_->GetInfo(*id, now_);
  EXPECT_EQ(info->state, ConnState::kConnecting);
  EXPECT_EQ(info->local_port, 4321u);
  Actions b;
  VRPC_ASSERT_OK(engine_->Respond(*id, b));
  ASSERT_THAT(Ops(b), ElementsAre(Op::kResponse));
  EXPECT_EQ(b.packets[0].header.src_port, 4321u);
  EXPECT_EQ(engine_->GetInfo(*id, now_)->state, ConnState::kEstablished);
  EXPECT_THAT(engine_->Respond(*id, b), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Ops(SendData("hi", 4321)), IsEmpty());
  EXPECT_EQ(engine_->GetInfo(*id, now_)->credit.buffered, 2u);
}

TEST_F(EngineTest, AnyPortRequestRefusedByClose) {
  VRPC_ASSERT_OK(engine_->ListenAnyPort(SocketType::kStream, 4));
  Deliver(FromGuest(Op::kRequest, 4321));
  auto id = engine_->Accept(kPortAny);
  ASSERT_TRUE(id.has_value());
  Actions a;
  engine_->Close(*id, now_, a);
  ASSERT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_EQ(a.packets[0].header.src_port, 4321u);
  EXPECT_EQ(engine_->stats().connections, 0u);
}

TEST_F(EngineTest, UnansweredAnyPortRequestIsRefusedOnTimeout) {
  VRPC_ASSERT_OK(engine_->ListenAnyPort(SocketType::kStream, 4));
  Deliver(FromGuest(Op::kRequest, 4321));
  Actions a;
  engine_->OnTimer(now_ + absl::Seconds(2), a);
  EXPECT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_TRUE(a.events.empty());  // never accepted: nobody to tell
  EXPECT_FALSE(engine_->Accept(kPortAny).has_value());
  EXPECT_EQ(engine_->stats().connections, 0u);
}

TEST_F(EngineTest, AnyPortRequestWithdrawnByPeer) {
  VRPC_ASSERT_OK(engine_->ListenAnyPort(SocketType::kStream, 4));
  Deliver(FromGuest(Op::kRequest, 4321));
  auto id = engine_->Accept(kPortAny);
  ASSERT_TRUE(id.has_value());
  Actions a = Deliver(FromGuest(Op::kRst, 4321));
  EXPECT_THAT(Ops(a), IsEmpty());
  ASSERT_THAT(Types(a), ElementsAre(EventType::kReset));
  Actions b;
  EXPECT_THAT(engine_->Respond(*id, b), StatusIs(absl::StatusCode::kFailedPrecondition));
  // Data before our answer is a protocol error.
  Deliver(FromGuest(Op::kRequest, 4322));
  EXPECT_THAT(Ops(SendData("early", 4322)), ElementsAre(Op::kRst));
}

TEST_F(EngineTest, SpecificListenerWinsOverAnyPort) {
  VRPC_ASSERT_OK(engine_->ListenAnyPort(SocketType::kStream, 4));
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest))), ElementsAre(Op::kResponse));
  EXPECT_TRUE(engine_->Accept(kHostPort).has_value());
  EXPECT_FALSE(engine_->Accept(kPortAny).has_value());
  EXPECT_THAT(engine_->ListenAnyPort(SocketType::kStream, 4),
              StatusIs(absl::StatusCode::kAlreadyExists));
  Actions a;
  engine_->Unlisten(kPortAny, a);
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest, 4321))), ElementsAre(Op::kRst));
}

TEST_F(EngineTest, AnyPortBacklogIsBounded) {
  VRPC_ASSERT_OK(engine_->ListenAnyPort(SocketType::kStream, 1));
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest, 1))), IsEmpty());
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest, 2))), ElementsAre(Op::kRst));
}

// ---- Malformed headers (HARDENING.md rows 5 and 14) ----

// A send that does not divide evenly into max-size packets leaves no tail
// shorter than copy_below: the receiver would copy it (rx_queue.h).
TEST_F(EngineTest, SendLeavesNoRuntTail) {
  ConnId id = EstablishIncoming();
  const uint32_t max = engine_->config().max_packet_payload;
  const uint32_t small = engine_->config().copy_below;
  for (uint32_t extra : {1u, small - 1, small, small + 1}) {
    SliceChain data(Slice::Copy(std::string(max + extra, 'r')));
    Actions a;
    ASSERT_THAT(engine_->Send(id, data, now_, a), IsOkAndHolds(max + extra));
    ASSERT_EQ(a.packets.size(), 2u) << extra;
    EXPECT_GE(a.packets[1].header.len, small) << extra;
    EXPECT_EQ(a.packets[0].header.len + a.packets[1].header.len, max + extra);
    guest_fwd_cnt_ += max + extra;  // the guest consumed it all
    Deliver(FromGuest(Op::kCreditUpdate));
  }
}

TEST_F(EngineTest, MisaddressedPacketsAreDroppedSilently) {
  ConnId id = EstablishIncoming();
  for (uint64_t dst : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{0xffffffff},
                       uint64_t{0x100000002}}) {
    Header h = FromGuest(Op::kRw, kHostPort, 1);
    h.dst_cid = dst;
    EXPECT_TRUE(Deliver(h, "x").empty()) << dst;
  }
  for (uint64_t src : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{4},
                       uint64_t{0xffffffff}, ~uint64_t{0}}) {
    Header h = FromGuest(Op::kRw, kHostPort, 1);
    h.src_cid = src;
    EXPECT_TRUE(Deliver(h, "x").empty()) << src;
  }
  EXPECT_EQ(engine_->stats().dropped, 11u);
  EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kEstablished);
  EXPECT_EQ(engine_->GetInfo(id, now_)->credit.buffered, 0u);
}

TEST_F(EngineTest, UnknownOpOrTypeResetsTheConnection) {
  for (uint16_t op : {uint16_t{0}, uint16_t{8}, uint16_t{0xffff}}) {
    MakeEngine(EngineConfig());
    ConnId id = EstablishIncoming();
    Header h = FromGuest(Op::kRw);
    h.op = op;
    Actions a = Deliver(h);
    EXPECT_THAT(Ops(a), ElementsAre(Op::kRst)) << op;
    EXPECT_THAT(Types(a), ElementsAre(EventType::kReset));
    EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kClosed);
  }
  for (uint16_t type : {uint16_t{0}, uint16_t{3}, uint16_t{0xffff}}) {
    MakeEngine(EngineConfig());
    EstablishIncoming();
    Header h = FromGuest(Op::kCreditRequest);
    h.type = type;
    EXPECT_THAT(Ops(Deliver(h)), ElementsAre(Op::kRst)) << type;
  }
}

TEST_F(EngineTest, UnknownOpWithoutConnectionGetsRstEvenForPorts) {
  Header h = FromGuest(Op::kRw);
  h.op = 42;
  Actions a = Deliver(h);
  ASSERT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_EQ(engine_->stats().malformed, 1u);
}

TEST_F(EngineTest, PayloadLengthBoundaries) {
  struct Case {
    uint32_t len;
    bool accepted;
  };
  for (const Case& c : {Case{0, true}, Case{1, true}, Case{65535, true},
                        Case{65536, true}, Case{65537, false}, Case{UINT32_MAX, false}}) {
    MakeEngine(EngineConfig());
    ConnId id = EstablishIncoming();
    // The payload matches the header where that is possible; for the
    // oversized cases the header alone must be enough to refuse it.
    const std::string payload(std::min<uint32_t>(c.len, 65537), 'p');
    Actions a = Deliver(FromGuest(Op::kRw, kHostPort, c.len), payload);
    auto info = engine_->GetInfo(id, now_);
    if (c.accepted) {
      EXPECT_THAT(Ops(a), IsEmpty()) << c.len;
      EXPECT_EQ(info->state, ConnState::kEstablished) << c.len;
      EXPECT_EQ(info->credit.buffered, c.len);
    } else {
      EXPECT_THAT(Ops(a), ElementsAre(Op::kRst)) << c.len;
      EXPECT_EQ(info->state, ConnState::kClosed) << c.len;
      EXPECT_EQ(info->credit.buffered, 0u);
    }
  }
}

TEST_F(EngineTest, HeaderLenDisagreeingWithPayloadIsReset) {
  ConnId id = EstablishIncoming();
  Actions a = Deliver(FromGuest(Op::kRw, kHostPort, 10), "short");
  EXPECT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kClosed);
}

// ---- Credit misbehaviour ----

TEST_F(EngineTest, PeerOverrunningCreditIsReset) {
  EngineConfig config;
  config.buf_alloc = 1000;
  MakeEngine(config);
  ConnId id = EstablishIncoming();
  EXPECT_TRUE(SendData(std::string(1000, 'a')).packets.empty());
  Actions a = SendData("b");  // buf_alloc + 1
  EXPECT_THAT(Ops(a), ElementsAre(Op::kRst));
  ASSERT_THAT(Types(a), ElementsAre(EventType::kReset));
  EXPECT_THAT(a.events[0].status, StatusIs(absl::StatusCode::kResourceExhausted));
  // What was received within credit is still readable.
  Actions r;
  EXPECT_EQ(engine_->Read(id, 5000, r)->size(), 1000u);
}

TEST_F(EngineTest, PeerFwdCntBackwardsOrPastTxCntIsReset) {
  for (uint32_t bad_fwd : {uint32_t{11}, uint32_t{0xffffffff}}) {
    MakeEngine(EngineConfig());
    guest_fwd_cnt_ = 0;
    ConnId id = EstablishIncoming();
    Actions a;
    SliceChain data(Slice::Copy(std::string(10, 'd')));
    EXPECT_THAT(engine_->Send(id, data, now_, a), IsOkAndHolds(10u));
    guest_fwd_cnt_ = bad_fwd;  // acknowledges 11 of 10 bytes / moves backwards
    Actions b = Deliver(FromGuest(Op::kCreditUpdate));
    EXPECT_THAT(Ops(b), ElementsAre(Op::kRst)) << bad_fwd;
    EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kClosed);
  }
}

TEST_F(EngineTest, RequestWithNonZeroFwdCntIsRefused) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  guest_fwd_cnt_ = 5;
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest))), ElementsAre(Op::kRst));
  EXPECT_FALSE(engine_->Accept(kHostPort).has_value());
}

TEST_F(EngineTest, CreditRequestIsAnswered) {
  EstablishIncoming();
  Actions a = Deliver(FromGuest(Op::kCreditRequest));
  ASSERT_THAT(Ops(a), ElementsAre(Op::kCreditUpdate));
  EXPECT_EQ(a.packets[0].header.buf_alloc, 256u * 1024);
}

TEST_F(EngineTest, DataAfterPeerShutdownSendIsReset) {
  EstablishIncoming();
  Header sh = FromGuest(Op::kShutdown);
  sh.flags = kShutdownSend;
  Deliver(sh);
  EXPECT_THAT(Ops(SendData("late")), ElementsAre(Op::kRst));
}

// Found by engine_pair_fuzz: a connection still in the accept queue that the
// peer shuts down is freed while its packet is being handled.
TEST_F(EngineTest, PeerShutdownBeforeAcceptFreesTheConnection) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  Deliver(FromGuest(Op::kRequest));
  Header sh = FromGuest(Op::kShutdown);
  sh.flags = kShutdownBoth;
  Actions a = Deliver(sh);
  EXPECT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_TRUE(a.events.empty());  // the application never saw it
  EXPECT_FALSE(engine_->Accept(kHostPort).has_value());
  EXPECT_EQ(engine_->stats().connections, 0u);
}

TEST_F(EngineTest, ProtocolErrorBeforeAcceptFreesTheConnection) {
  VRPC_ASSERT_OK(engine_->Listen(kHostPort, SocketType::kStream, 4));
  Deliver(FromGuest(Op::kRequest));
  guest_fwd_cnt_ = 9;  // acknowledges bytes never sent
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kCreditUpdate))), ElementsAre(Op::kRst));
  EXPECT_FALSE(engine_->Accept(kHostPort).has_value());
  EXPECT_EQ(engine_->stats().connections, 0u);
}

TEST_F(EngineTest, DuplicateRequestOnLiveConnectionIsReset) {
  ConnId id = EstablishIncoming();
  EXPECT_THAT(Ops(Deliver(FromGuest(Op::kRequest))), ElementsAre(Op::kRst));
  EXPECT_EQ(engine_->GetInfo(id, now_)->state, ConnState::kClosed);
}

// ---- Close ----

TEST_F(EngineTest, CloseTimeoutProducesRst) {
  ConnId id = EstablishIncoming();
  Actions a;
  engine_->Close(id, now_, a);
  ASSERT_THAT(Ops(a), ElementsAre(Op::kShutdown));
  EXPECT_EQ(a.packets[0].header.flags, kShutdownBoth);
  EXPECT_THAT(engine_->GetInfo(id, now_), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(engine_->stats().connections, 1u);  // lingering
  Actions b;
  engine_->OnTimer(now_ + absl::Seconds(2), b);
  EXPECT_THAT(Ops(b), ElementsAre(Op::kRst));
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(engine_->stats().connections, 0u);
}

TEST_F(EngineTest, CloseFinishesOnPeerRst) {
  ConnId id = EstablishIncoming();
  Actions a;
  engine_->Close(id, now_, a);
  EXPECT_TRUE(Deliver(FromGuest(Op::kRst)).empty());
  EXPECT_EQ(engine_->stats().connections, 0u);
  EXPECT_FALSE(engine_->NextDeadline().has_value());
}

TEST_F(EngineTest, CloseWithUnreadDataResetsAtOnce) {
  ConnId id = EstablishIncoming();
  SendData("unread");
  Actions a;
  engine_->Close(id, now_, a);
  EXPECT_THAT(Ops(a), ElementsAre(Op::kRst));
  EXPECT_EQ(engine_->stats().connections, 0u);
}

TEST_F(EngineTest, CloseOfUnknownIdIsANoOp) {
  Actions a;
  engine_->Close(ConnId{77}, now_, a);
  EXPECT_TRUE(a.empty());
}

TEST_F(EngineTest, ResetAllKeepsListeners) {
  ConnId id = EstablishIncoming();
  Actions a;
  engine_->ResetAll(absl::UnavailableError("transport reset"), a);
  EXPECT_TRUE(a.packets.empty());
  ASSERT_THAT(Types(a), ElementsAre(EventType::kReset));
  EXPECT_EQ(a.events[0].conn, id);
  guest_fwd_cnt_ = 0;
  Header again = FromGuest(Op::kRequest);
  again.src_port = kGuestPort + 1;
  EXPECT_THAT(Ops(Deliver(again)), ElementsAre(Op::kResponse));
}

TEST_F(EngineTest, StaleIdsNeverReachNewConnections) {
  ConnId first = EstablishIncoming();
  Actions a;
  engine_->Close(first, now_, a);
  Deliver(FromGuest(Op::kRst));
  Deliver(FromGuest(Op::kRequest));
  auto second = engine_->Accept(kHostPort);
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*second, first);
  SliceChain data(Slice::Copy(absl::string_view("x")));
  EXPECT_THAT(engine_->Send(first, data, now_, a), StatusIs(absl::StatusCode::kNotFound));
}

TEST(EngineConfigTest, RejectsBadCids) {
  EngineConfig c;
  for (auto [local, peer] : std::vector<std::pair<uint64_t, uint64_t>>{
           {2, 2}, {2, 0}, {2, 1}, {2, 0xffffffff}, {3, 4}, {0x100000002, 3}, {1, 2}}) {
    c.local_cid = local;
    c.peer_cid = peer;
    EXPECT_THAT(Engine::Create(c), StatusIs(absl::StatusCode::kInvalidArgument))
        << local << "->" << peer;
  }
  c.local_cid = 3;
  c.peer_cid = 2;
  EXPECT_THAT(Engine::Create(c), IsOk());
  c.max_packet_payload = kMaxPacketPayload + 1;
  EXPECT_THAT(Engine::Create(c), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EngineConfigTest, GuestAdoptsNewCidAfterReset) {
  EngineConfig c;
  c.local_cid = 3;
  c.peer_cid = kCidHost;
  auto engine = *Engine::Create(c);
  VRPC_EXPECT_OK(engine->SetLocalCid(7));
  EXPECT_EQ(engine->config().local_cid, 7u);
  EXPECT_THAT(engine->SetLocalCid(2), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
