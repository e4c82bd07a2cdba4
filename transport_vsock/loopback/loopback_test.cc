// Connection flows between two real engines over the loopback link: the
// seed's connect path, credit, half-close, SEQPACKET, close and resets.
#include "transport_vsock/loopback/loopback.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

using ::testing::AnyOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uint32_t kPort = 9999;

std::string Pattern(size_t n, uint32_t seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

class LoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(LoopbackLink::Options()); }

  void Make(const LoopbackLink::Options& options) {
    auto link = LoopbackLink::Create(options);
    ASSERT_THAT(link, IsOk());
    link_ = *std::move(link);
    link_->SetTrace([this](Side from, const Packet& p) {
      trace_.push_back(SideName(from) + " " + OpName(p.header.op));
    });
  }

  LoopbackEndpoint& host() { return link_->host(); }
  LoopbackEndpoint& guest() { return link_->guest(); }

  // Guest connects to host port kPort; returns {guest id, host id}.
  std::pair<ConnId, ConnId> Establish(SocketType type = SocketType::kStream) {
    EXPECT_THAT(host().Listen(kPort, 16, type), IsOk());
    auto g = guest().Connect(kPort, type);
    EXPECT_THAT(g, IsOk());
    link_->Pump();
    auto h = host().Accept(kPort);
    EXPECT_TRUE(h.has_value());
    trace_.clear();
    return {g.value_or(ConnId{}), h.value_or(ConnId{})};
  }

  // Moves |data| from |from| to |to| through the credit window, pumping and
  // reading as needed. Returns what |to| read.
  std::string Transfer(LoopbackEndpoint& from, ConnId fid, LoopbackEndpoint& to, ConnId tid,
                       const std::string& data) {
    SliceChain pending(Slice::Copy(data));
    std::string got;
    for (int rounds = 0; rounds < 1000000 && got.size() < data.size(); ++rounds) {
      if (!pending.empty()) {
        auto sent = from.Send(fid, pending);
        EXPECT_THAT(sent, IsOk());
        if (!sent.ok()) break;
      }
      link_->Pump();
      auto chunk = to.Read(tid, 100000);
      EXPECT_THAT(chunk, IsOk());
      if (!chunk.ok()) break;
      got += *chunk;
      link_->Pump();
    }
    return got;
  }

  std::unique_ptr<LoopbackLink> link_;
  std::vector<std::string> trace_;
};

// ---- The seed document's connect(), end to end ----

TEST_F(LoopbackTest, SeedConnectFlow) {
  VRPC_ASSERT_OK(host().Listen(kPort));
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest().Connect(kPort));
  // vsock_stream_connect: TCP_SYN_SENT while OP_REQUEST is outstanding.
  EXPECT_EQ(guest().Info(g)->state, ConnState::kConnecting);
  ASSERT_EQ(link_->Queued(Side::kHost), 1u);

  link_->Pump(1);  // host: virtio_transport_recv_listen -> OP_RESPONSE
  EXPECT_THAT(trace_, ElementsAre("guest REQUEST"));
  EXPECT_EQ(link_->Queued(Side::kGuest), 1u);
  EXPECT_EQ(host().events().back().type, EventType::kIncoming);
  auto h = host().Accept(kPort);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(host().Info(*h)->state, ConnState::kEstablished);
  EXPECT_EQ(guest().Info(g)->state, ConnState::kConnecting);

  link_->Pump(1);  // guest: virtio_transport_recv_connecting -> ESTABLISHED
  EXPECT_THAT(trace_, ElementsAre("guest REQUEST", "host RESPONSE"));
  EXPECT_EQ(guest().Info(g)->state, ConnState::kEstablished);
  EXPECT_THAT(guest().EventsFor(g), ElementsAre(EventType::kConnected));
  EXPECT_EQ(host().Info(*h)->peer_port, guest().Info(g)->local_port);
  EXPECT_EQ(guest().Info(g)->peer_port, kPort);
}

TEST_F(LoopbackTest, ConnectToNothingIsRefused) {
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest().Connect(1234));
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("guest REQUEST", "host RST"));
  EXPECT_THAT(guest().EventsFor(g), ElementsAre(EventType::kRefused));
  EXPECT_THAT(guest().Info(g)->status, StatusIs(absl::StatusCode::kUnavailable));
}

// vsock_test 1: bound (by a client connection) but not listening.
TEST_F(LoopbackTest, BoundButNotListeningIsRefused) {
  VRPC_ASSERT_OK(guest().Listen(7000));
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId h, host().Connect(1, SocketType::kStream, 4000));
  link_->Pump();
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest().Connect(4000));
  link_->Pump();
  EXPECT_THAT(host().EventsFor(h), ElementsAre(EventType::kRefused));
  EXPECT_THAT(guest().EventsFor(g), ElementsAre(EventType::kRefused));
}

// vsock_test 30: a failed connect can be retried.
TEST_F(LoopbackTest, RetryAfterRefusal) {
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId first, guest().Connect(kPort));
  link_->Pump();
  ASSERT_TRUE(guest().HasEvent(first, EventType::kRefused));
  guest().Close(first);
  VRPC_ASSERT_OK(host().Listen(kPort));
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId second, guest().Connect(kPort));
  link_->Pump();
  EXPECT_TRUE(guest().HasEvent(second, EventType::kConnected));
}

TEST_F(LoopbackTest, ConnectTimesOutWhenThePeerIsSilent) {
  link_->SetTap([](Side, Packet&) { return LoopbackLink::TapVerdict::kDrop; });
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest().Connect(kPort));
  link_->AdvanceTime(absl::Milliseconds(1999));
  EXPECT_EQ(guest().Info(g)->state, ConnState::kConnecting);
  link_->AdvanceTime(absl::Milliseconds(1));
  EXPECT_THAT(guest().EventsFor(g), ElementsAre(EventType::kReset));
  EXPECT_THAT(guest().Info(g)->status, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// ---- Data and credit ----

TEST_F(LoopbackTest, BulkTransferBothWaysIsIntact) {
  auto [g, h] = Establish();
  const std::string up = Pattern(3 * 1024 * 1024 + 7, 1);
  const std::string down = Pattern(2 * 1024 * 1024 + 13, 2);
  EXPECT_EQ(Transfer(guest(), g, host(), h, up), up);
  EXPECT_EQ(Transfer(host(), h, guest(), g, down), down);
  EXPECT_EQ(host().engine().stats().copied_bytes, 0u);
  EXPECT_EQ(guest().engine().stats().copied_bytes, 0u);
  EXPECT_EQ(host().engine().stats().protocol_errors, 0u);
}

TEST_F(LoopbackTest, ReceivedPayloadSharesTheSendersSlices) {
  auto [g, h] = Establish();
  Slice payload = Slice::Copy(Pattern(4096));
  SliceChain data(payload);
  EXPECT_THAT(guest().Send(g, data), IsOkAndHolds(4096u));
  link_->Pump();
  VRPC_ASSERT_OK_AND_ASSIGN(SliceChain got, host().ReadSlices(h));
  ASSERT_EQ(got.slices().size(), 1u);
  EXPECT_TRUE(got.slices()[0].SharesBackingWith(payload));  // zero copy
}

TEST_F(LoopbackTest, SenderBlocksExactlyWhenPeerWindowIsFull) {
  LoopbackLink::Options options;
  options.host.buf_alloc = 64 * 1024;
  Make(options);
  auto [g, h] = Establish();
  EXPECT_THAT(guest().Write(g, Pattern(64 * 1024)), IsOkAndHolds(64u * 1024));
  EXPECT_FALSE(guest().Info(g)->credit_blocked);
  EXPECT_EQ(guest().Info(g)->credit.peer_credit, 0u);
  EXPECT_THAT(guest().EventsFor(g), Not(Contains(EventType::kCreditBlocked)));
  link_->Pump();
  trace_.clear();

  EXPECT_THAT(guest().Write(g, "x"), IsOkAndHolds(0u));
  EXPECT_TRUE(guest().Info(g)->credit_blocked);
  EXPECT_THAT(guest().EventsFor(g), ElementsAre(EventType::kConnected,
                                                EventType::kCreditBlocked));
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("guest CREDIT_REQUEST", "host CREDIT_UPDATE"));
  EXPECT_TRUE(guest().Info(g)->credit_blocked);  // nothing consumed yet

  link_->AdvanceTime(absl::Milliseconds(250));
  trace_.clear();
  EXPECT_THAT(host().Read(h, 1000), IsOkAndHolds(Pattern(64 * 1024).substr(0, 1000)));
  link_->Pump();
  EXPECT_THAT(trace_, IsEmpty());  // 1000 bytes is under the update threshold
  EXPECT_THAT(host().Read(h), IsOk());  // drains: an update must go out
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("host CREDIT_UPDATE"));
  EXPECT_FALSE(guest().Info(g)->credit_blocked);
  EXPECT_EQ(guest().EventsFor(g).back(), EventType::kCreditRestored);
  EXPECT_EQ(guest().Info(g)->time_blocked, absl::Milliseconds(250));
  EXPECT_THAT(guest().Write(g, "x"), IsOkAndHolds(1u));
}

// A request and its reply: the reply's header carries the fwd_cnt that
// reading the request advanced, so no OP_CREDIT_UPDATE goes either way.
TEST_F(LoopbackTest, RequestResponseSendsNoCreditUpdates) {
  auto [g, h] = Establish();
  trace_.clear();
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(guest().Write(g, "request"), IsOkAndHolds(7u));
    link_->Pump();
    EXPECT_THAT(host().Read(h), IsOkAndHolds("request"));
    EXPECT_THAT(host().Write(h, "reply"), IsOkAndHolds(5u));
    link_->Pump();
    EXPECT_THAT(guest().Read(g), IsOkAndHolds("reply"));
    link_->Pump();
  }
  EXPECT_THAT(trace_, Each(AnyOf("guest RW", "host RW")));
  EXPECT_EQ(guest().Info(g)->credit.peer_fwd_cnt, 3u * 7);
}

// With credit_update_on_drain (the driver and device in interrupt mode),
// reading the request sends an update at once, before the reply exists.
TEST_F(LoopbackTest, CreditUpdateOnDrainAdvertisesEachRead) {
  LoopbackLink::Options options;
  options.host.credit_update_on_drain = true;
  Make(options);
  auto [g, h] = Establish();
  trace_.clear();
  EXPECT_THAT(guest().Write(g, "request"), IsOkAndHolds(7u));
  link_->Pump();
  EXPECT_THAT(host().Read(h), IsOkAndHolds("request"));
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("guest RW", "host CREDIT_UPDATE"));
  EXPECT_EQ(guest().Info(g)->credit.peer_fwd_cnt, 7u);
}

TEST_F(LoopbackTest, CountersWrapPast2To32) {
  LoopbackLink::Options options;
  options.host.buf_alloc = 64 * 1024;
  options.host.credit_update_threshold = 64 * 1024;
  Make(options);
  auto [g, h] = Establish();
  const Slice block = Slice::Copy(Pattern(64 * 1024));
  const uint64_t blocks = (uint64_t{1} << 16) + 4;  // 2^32 + 256 KiB
  uint64_t received = 0;
  for (uint64_t i = 0; i < blocks; ++i) {
    SliceChain data(block);
    ASSERT_THAT(guest().Send(g, data), IsOkAndHolds(64u * 1024)) << i;
    link_->Pump();
    auto got = host().ReadSlices(h);
    ASSERT_THAT(got, IsOk());
    received += got->size();
    link_->Pump();
  }
  EXPECT_EQ(received, blocks * 64 * 1024);
  auto info = guest().Info(g);
  EXPECT_EQ(info->credit.tx_cnt, 4u * 64 * 1024);  // wrapped
  EXPECT_EQ(info->state, ConnState::kEstablished);
  EXPECT_EQ(host().Info(h)->credit.fwd_cnt, 4u * 64 * 1024);
  EXPECT_EQ(host().engine().stats().protocol_errors, 0u);
}

TEST_F(LoopbackTest, PeerShrinksBufAllocWithBytesInFlight) {
  auto [g, h] = Establish();
  EXPECT_THAT(guest().Write(g, Pattern(200 * 1024)), IsOkAndHolds(200u * 1024));
  link_->Pump();
  VRPC_ASSERT_OK(host().SetBufferSize(h, 100 * 1024));
  link_->Pump();
  // 200 KiB in flight against a 100 KiB window: no credit, never wrapped.
  EXPECT_EQ(guest().Info(g)->credit.peer_credit, 0u);
  EXPECT_THAT(guest().Write(g, "more"), IsOkAndHolds(0u));
  VRPC_ASSERT_OK_AND_ASSIGN(std::string got, host().Read(h, 150 * 1024));
  link_->Pump();
  EXPECT_EQ(guest().Info(g)->credit.peer_credit, 50u * 1024);
  EXPECT_EQ(host().engine().stats().protocol_errors, 0u);
}

TEST_F(LoopbackTest, OverrunningPeerIsResetOthersUnaffected) {
  LoopbackLink::Options options;
  options.host.buf_alloc = 4096;
  Make(options);
  auto [g1, h1] = Establish();
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g2, guest().Connect(kPort));
  link_->Pump();
  auto h2 = host().Accept(kPort);
  ASSERT_TRUE(h2.has_value());
  // A hostile guest ignores credit: 4097 bytes on connection 1.
  const ConnInfo info = *guest().Info(g1);
  Packet p;
  p.header.src_cid = 3;
  p.header.dst_cid = 2;
  p.header.src_port = info.local_port;
  p.header.dst_port = info.peer_port;
  p.header.type = 1;
  p.header.op = static_cast<uint16_t>(Op::kRw);
  p.header.len = 4097;
  p.header.buf_alloc = info.credit.buf_alloc;
  p.payload.Append(Slice::Copy(Pattern(4097)));
  link_->Inject(Side::kGuest, std::move(p));
  link_->Pump();
  EXPECT_THAT(host().EventsFor(h1), Contains(EventType::kReset));
  EXPECT_THAT(guest().EventsFor(g1), Contains(EventType::kReset));
  EXPECT_EQ(host().Info(h1)->credit.buffered, 0u);
  // Connection 2 still works.
  EXPECT_EQ(Transfer(guest(), g2, host(), *h2, "still fine"), "still fine");
}

TEST_F(LoopbackTest, OneByteFloodStaysBounded) {
  auto [g, h] = Establish();
  const int kPackets = 256 * 1024;
  for (int i = 0; i < kPackets; ++i) {
    ASSERT_THAT(guest().Write(g, "z"), IsOkAndHolds(1u));
    if (i % 4096 == 0) link_->Pump();
  }
  link_->Pump();
  auto info = host().Info(h);
  EXPECT_EQ(info->credit.buffered, static_cast<uint32_t>(kPackets));
  // Tiny payloads were coalesced: few slices held, every sender buffer freed.
  EXPECT_EQ(host().engine().stats().copied_bytes, static_cast<uint64_t>(kPackets));
  EXPECT_EQ(host().Read(h)->size(), static_cast<size_t>(kPackets));
}

TEST_F(LoopbackTest, ManyConcurrentConnections) {
  VRPC_ASSERT_OK(host().Listen(kPort, 512));
  std::vector<std::pair<ConnId, ConnId>> conns;
  for (int i = 0; i < 300; ++i) {
    VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest().Connect(kPort));
    conns.push_back({g, ConnId{}});
  }
  link_->Pump();
  for (auto& c : conns) {
    auto h = host().Accept(kPort);
    ASSERT_TRUE(h.has_value());
    c.second = *h;
  }
  for (size_t i = 0; i < conns.size(); ++i) {
    ASSERT_THAT(guest().Write(conns[i].first, "ping " + std::to_string(i)), IsOk());
  }
  link_->Pump();
  // Each host connection got its own bytes (ids and ports not crossed).
  std::vector<std::pair<uint32_t, uint32_t>> ports;
  for (size_t i = 0; i < conns.size(); ++i) {
    EXPECT_THAT(host().Read(conns[i].second), IsOkAndHolds("ping " + std::to_string(i)));
    EXPECT_THAT(host().Write(conns[i].second, "pong " + std::to_string(i)), IsOk());
  }
  link_->Pump();
  for (size_t i = 0; i < conns.size(); ++i) {
    EXPECT_THAT(guest().Read(conns[i].first), IsOkAndHolds("pong " + std::to_string(i)));
  }
}

// ---- Shutdown and close ----

// vsock_test 16 / HARDENING row 16: SHUT_WR delivers EOF after the data and
// the other direction keeps working.
TEST_F(LoopbackTest, HalfCloseGuestToHost) {
  auto [g, h] = Establish();
  ASSERT_THAT(guest().Write(g, "request"), IsOk());
  VRPC_ASSERT_OK(guest().Shutdown(g, kShutdownSend));
  link_->Pump();
  EXPECT_THAT(host().EventsFor(h), Contains(EventType::kPeerShutdown));
  EXPECT_FALSE(host().AtEof(h));  // data first
  EXPECT_THAT(host().Read(h), IsOkAndHolds("request"));
  EXPECT_TRUE(host().AtEof(h));
  EXPECT_THAT(guest().Write(g, "more"), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(host().Write(h, "response"), IsOk());
  link_->Pump();
  EXPECT_THAT(guest().Read(g), IsOkAndHolds("response"));
  EXPECT_EQ(host().Info(h)->state, ConnState::kEstablished);
}

TEST_F(LoopbackTest, HalfCloseHostToGuest) {
  auto [g, h] = Establish();
  ASSERT_THAT(host().Write(h, "banner"), IsOk());
  VRPC_ASSERT_OK(host().Shutdown(h, kShutdownSend));
  link_->Pump();
  EXPECT_THAT(guest().Read(g), IsOkAndHolds("banner"));
  EXPECT_TRUE(guest().AtEof(g));
  ASSERT_THAT(guest().Write(g, "reply"), IsOk());
  link_->Pump();
  EXPECT_THAT(host().Read(h), IsOkAndHolds("reply"));
}

// vsock_test 17: after the peer's SHUT_RD our sends fail (EPIPE).
TEST_F(LoopbackTest, PeerShutdownReceiveStopsSends) {
  auto [g, h] = Establish();
  VRPC_ASSERT_OK(host().Shutdown(h, kShutdownRcv));
  link_->Pump();
  EXPECT_THAT(guest().Write(g, "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(host().Write(h, "still sending"), IsOk());
  link_->Pump();
  EXPECT_THAT(guest().Read(g), IsOkAndHolds("still sending"));
}

TEST_F(LoopbackTest, OrderlyCloseExchangesShutdownThenRst) {
  auto [g, h] = Establish();
  ASSERT_THAT(guest().Write(g, "last words"), IsOk());
  guest().Close(g);
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("guest RW", "guest SHUTDOWN"));
  EXPECT_THAT(host().Read(h), IsOkAndHolds("last words"));  // no data lost
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("guest RW", "guest SHUTDOWN", "host RST"));
  EXPECT_THAT(host().EventsFor(h), Contains(EventType::kClosed));
  EXPECT_THAT(host().EventsFor(h), Not(Contains(EventType::kReset)));
  EXPECT_TRUE(host().AtEof(h));
  host().Close(h);
  EXPECT_EQ(host().engine().stats().connections, 0u);
  EXPECT_EQ(guest().engine().stats().connections, 0u);
}

TEST_F(LoopbackTest, SimultaneousClose) {
  auto [g, h] = Establish();
  guest().Close(g);
  host().Close(h);
  link_->Pump();
  EXPECT_EQ(host().engine().stats().connections, 0u);
  EXPECT_EQ(guest().engine().stats().connections, 0u);
  EXPECT_FALSE(host().engine().NextDeadline().has_value());
}

TEST_F(LoopbackTest, CloseTimeoutResetsSilentPeer) {
  auto [g, h] = Establish();
  host().Close(h);
  link_->SetTap([](Side from, Packet&) {
    return from == Side::kHost ? LoopbackLink::TapVerdict::kDeliver
                               : LoopbackLink::TapVerdict::kDrop;
  });
  link_->Pump();
  EXPECT_EQ(host().engine().stats().connections, 1u);
  link_->AdvanceTime(absl::Seconds(2));
  EXPECT_EQ(host().engine().stats().connections, 0u);
  EXPECT_THAT(trace_, ElementsAre("host SHUTDOWN", "host RST"));
  EXPECT_EQ(guest().Info(g)->state, ConnState::kClosed);
}

TEST_F(LoopbackTest, RstMidTransferKeepsReceivedData) {
  auto [g2, h2] = Establish();
  ASSERT_THAT(guest().Write(g2, "kept"), IsOk());
  link_->Pump();
  // The guest vanishes without a close handshake: a bare RST.
  Packet rst;
  rst.header.src_cid = 3;
  rst.header.dst_cid = 2;
  rst.header.src_port = guest().Info(g2)->local_port;
  rst.header.dst_port = kPort;
  rst.header.type = 1;
  rst.header.op = static_cast<uint16_t>(Op::kRst);
  link_->Inject(Side::kGuest, std::move(rst));
  link_->Pump();
  EXPECT_THAT(host().EventsFor(h2), Contains(EventType::kReset));
  EXPECT_THAT(host().Read(h2), IsOkAndHolds("kept"));
  EXPECT_THAT(host().Read(h2), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(host().Write(h2, "x"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(LoopbackTest, TransportResetKeepsListeners) {
  auto [g, h] = Establish();
  Actions host_actions;
  host().engine().ResetAll(absl::UnavailableError("frontend gone"), host_actions);
  EXPECT_TRUE(host_actions.packets.empty());
  Actions actions;
  guest().engine().ResetAll(absl::UnavailableError("TRANSPORT_RESET"), actions);
  EXPECT_EQ(actions.events.size(), 1u);
  EXPECT_THAT(host().Info(h)->status, StatusIs(absl::StatusCode::kUnavailable));
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId again, guest().Connect(kPort));
  link_->Pump();
  EXPECT_TRUE(guest().HasEvent(again, EventType::kConnected));
}

// ---- SEQPACKET ----

TEST_F(LoopbackTest, SeqpacketKeepsBoundariesAcrossFragmentation) {
  LoopbackLink::Options options;
  options.guest.max_packet_payload = 1000;
  Make(options);
  auto [g, h] = Establish(SocketType::kSeqpacket);
  const std::vector<size_t> sizes = {1, 999, 1000, 1001, 5000, 64 * 1024};
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_THAT(guest().SendMessage(g, Pattern(sizes[i], i), /*eor=*/i % 2 == 1), IsOk());
  }
  link_->Pump();
  for (size_t i = 0; i < sizes.size(); ++i) {
    VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Message> m, host().ReadMessage(h));
    ASSERT_TRUE(m.has_value()) << i;
    EXPECT_EQ(m->data.ToString(), Pattern(sizes[i], i)) << i;
    EXPECT_EQ(m->end_of_record, i % 2 == 1) << i;
  }
  VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Message> none, host().ReadMessage(h));
  EXPECT_FALSE(none.has_value());
}

TEST_F(LoopbackTest, SeqpacketMessageLimitsAndBlocking) {
  LoopbackLink::Options options;
  options.host.buf_alloc = 10000;
  Make(options);
  auto [g, h] = Establish(SocketType::kSeqpacket);
  EXPECT_THAT(guest().SendMessage(g, Pattern(10001)),
              StatusIs(absl::StatusCode::kResourceExhausted));  // EMSGSIZE
  EXPECT_THAT(guest().SendMessage(g, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  VRPC_ASSERT_OK(guest().SendMessage(g, Pattern(6000)));
  EXPECT_THAT(guest().SendMessage(g, Pattern(6000)),
              StatusIs(absl::StatusCode::kUnavailable));  // all or nothing
  EXPECT_TRUE(guest().Info(g)->credit_blocked);
  link_->Pump();
  VRPC_ASSERT_OK(host().ReadMessage(h).status());
  link_->Pump();
  EXPECT_FALSE(guest().Info(g)->credit_blocked);
  EXPECT_THAT(guest().EventsFor(g), Contains(EventType::kCreditRestored));
  VRPC_EXPECT_OK(guest().SendMessage(g, Pattern(6000)));
  EXPECT_THAT(guest().Write(g, "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// A SEQPACKET sender waits for room for a whole message and asks for it.
// Reading a small message frees far less than the update threshold, but the
// waiting sender must still learn of it, or both sides wait forever.
TEST_F(LoopbackTest, SeqpacketSenderWaitingForRoomLearnsOfSmallReads) {
  auto [g, h] = Establish(SocketType::kSeqpacket);
  const uint32_t window = guest().Info(g)->credit.peer_buf_alloc;
  VRPC_ASSERT_OK(guest().SendMessage(g, Pattern(20000)));
  EXPECT_THAT(guest().SendMessage(g, Pattern(window - 10000)),
              StatusIs(absl::StatusCode::kUnavailable));
  link_->Pump();
  EXPECT_TRUE(guest().Info(g)->credit_blocked);
  trace_.clear();
  VRPC_ASSERT_OK(host().ReadMessage(h).status());
  link_->Pump();
  EXPECT_THAT(trace_, ElementsAre("host CREDIT_UPDATE"));
  EXPECT_FALSE(guest().Info(g)->credit_blocked);
  VRPC_EXPECT_OK(guest().SendMessage(g, Pattern(window - 10000)));
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
