#include "transport_vsock/protocol/credit.h"

#include <cstdint>
#include <random>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

TEST(CreditAccountTest, NoCreditBeforeThePeerSpeaks) {
  CreditAccount credit(4096, 1 << 20);
  EXPECT_EQ(credit.PeerCredit(), 0u);
}

TEST(CreditAccountTest, CreditFollowsPeerWindow) {
  CreditAccount credit(4096, 1 << 20);
  VRPC_ASSERT_OK(credit.OnPeerCredit(1000, 0));
  EXPECT_EQ(credit.PeerCredit(), 1000u);
  credit.OnSend(600);
  EXPECT_EQ(credit.PeerCredit(), 400u);
  EXPECT_EQ(credit.InFlight(), 600u);
  VRPC_ASSERT_OK(credit.OnPeerCredit(1000, 500));
  EXPECT_EQ(credit.PeerCredit(), 900u);
}

TEST(CreditAccountTest, WindowIsCappedByMaxTxWindow) {
  CreditAccount credit(4096, 2048);
  VRPC_ASSERT_OK(credit.OnPeerCredit(0xffffffffu, 0));
  EXPECT_EQ(credit.PeerWindow(), 2048u);
  EXPECT_EQ(credit.PeerCredit(), 2048u);
}

// CVE-2026-23069: shrinking buf_alloc below the bytes in flight must give 0,
// not a wrapped 4 GiB credit.
TEST(CreditAccountTest, PeerShrinksBufAllocWithBytesInFlight) {
  CreditAccount credit(4096, 1 << 20);
  VRPC_ASSERT_OK(credit.OnPeerCredit(1000, 0));
  credit.OnSend(900);
  VRPC_ASSERT_OK(credit.OnPeerCredit(100, 0));
  EXPECT_EQ(credit.PeerCredit(), 0u);
  VRPC_ASSERT_OK(credit.OnPeerCredit(100, 850));  // 50 in flight now
  EXPECT_EQ(credit.PeerCredit(), 50u);
}

TEST(CreditAccountTest, FwdCntBackwardsOrPastTxCntIsAViolation) {
  CreditAccount credit(4096, 1 << 20);
  VRPC_ASSERT_OK(credit.OnPeerCredit(1000, 0));
  credit.OnSend(500);
  VRPC_ASSERT_OK(credit.OnPeerCredit(1000, 300));
  EXPECT_THAT(credit.OnPeerCredit(1000, 299), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(credit.OnPeerCredit(1000, 501), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(credit.OnPeerCredit(1000, 0xffffffffu),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A rejected update changes nothing.
  EXPECT_EQ(credit.Snapshot().peer_fwd_cnt, 300u);
  VRPC_EXPECT_OK(credit.OnPeerCredit(1000, 500));
}

TEST(CreditAccountTest, CountersWrapPast2To32) {
  CreditAccount credit(1 << 16, 1 << 20);
  VRPC_ASSERT_OK(credit.OnPeerCredit(1 << 16, 0));
  // Move 2^32 + 3 * 2^16 bytes through in window-sized steps.
  const uint64_t steps = (uint64_t{1} << 16) + 3;
  uint32_t fwd = 0;
  for (uint64_t i = 0; i < steps; ++i) {
    ASSERT_EQ(credit.PeerCredit(), 1u << 16) << i;
    credit.OnSend(1 << 16);
    ASSERT_EQ(credit.PeerCredit(), 0u);
    fwd += 1u << 16;
    ASSERT_THAT(credit.OnPeerCredit(1 << 16, fwd), IsOk()) << i;
  }
  EXPECT_EQ(credit.Snapshot().tx_cnt, 3u << 16);  // wrapped
  // Across the wrap, a stale fwd_cnt is still recognised as backwards.
  EXPECT_THAT(credit.OnPeerCredit(1 << 16, fwd - 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CreditAccountTest, ReceiveWithinCreditAndOverrun) {
  CreditAccount credit(1000, 1 << 20);
  VRPC_ASSERT_OK(credit.OnReceive(600));
  VRPC_ASSERT_OK(credit.OnReceive(400));
  EXPECT_EQ(credit.Buffered(), 1000u);
  EXPECT_THAT(credit.OnReceive(1), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(credit.Buffered(), 1000u);
  // Consumed but not yet advertised: the peer can't know, so still overrun.
  credit.OnConsume(500);
  EXPECT_THAT(credit.OnReceive(1), StatusIs(absl::StatusCode::kResourceExhausted));
  credit.MarkAdvertised();
  VRPC_EXPECT_OK(credit.OnReceive(500));
  EXPECT_THAT(credit.OnReceive(1), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CreditAccountTest, ReceiveCountersWrap) {
  CreditAccount credit(1 << 16, 1 << 20);
  for (uint64_t i = 0; i < (uint64_t{1} << 16) + 2; ++i) {
    ASSERT_THAT(credit.OnReceive(1 << 16), IsOk()) << i;
    credit.OnConsume(1 << 16);
    credit.MarkAdvertised();
  }
  EXPECT_EQ(credit.Snapshot().rx_cnt, 2u << 16);
  EXPECT_THAT(credit.OnReceive((1 << 16) + 1), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CreditAccountTest, ShrinkingOurBufferHonoursCreditAlreadyGranted) {
  CreditAccount credit(1000, 1 << 20);
  credit.SetBufAlloc(100);
  // The peer may still be sending under the 1000 we advertised before.
  VRPC_EXPECT_OK(credit.OnReceive(1000));
}

TEST(CreditAccountTest, AdvertiseThreshold) {
  CreditAccount credit(1000, 1 << 20);
  EXPECT_FALSE(credit.ShouldAdvertise(300));
  VRPC_ASSERT_OK(credit.OnReceive(1000));
  credit.OnConsume(200);
  EXPECT_FALSE(credit.ShouldAdvertise(300));
  credit.OnConsume(100);
  EXPECT_TRUE(credit.ShouldAdvertise(300));
  credit.MarkAdvertised();
  EXPECT_FALSE(credit.ShouldAdvertise(300));
  credit.MarkAdvertised();
  credit.SetBufAlloc(2000);
  EXPECT_TRUE(credit.ShouldAdvertise(100000));
}

// A request/response exchange: the reply carries fwd_cnt, so draining a
// small message alone must not cost an OP_CREDIT_UPDATE.
TEST(CreditAccountTest, DrainedSmallMessageWaitsForThreshold) {
  CreditAccount credit(256 * 1024, 1 << 20);
  VRPC_ASSERT_OK(credit.OnReceive(100));
  credit.OnConsume(100);
  EXPECT_FALSE(credit.ShouldAdvertise(64 * 1024));
}

// A stream sender blocked at zero credit: once we drain, a whole buf_alloc
// is unadvertised, which crosses the threshold however large it is.
TEST(CreditAccountTest, SenderBlockedAtZeroAlwaysLearns) {
  CreditAccount credit(4096, 1 << 20);  // buf_alloc below the threshold
  VRPC_ASSERT_OK(credit.OnReceive(4096));
  credit.OnConsume(1000);
  EXPECT_FALSE(credit.ShouldAdvertise(64 * 1024));
  credit.OnConsume(1048);  // half of buf_alloc consumed
  EXPECT_TRUE(credit.ShouldAdvertise(64 * 1024));
  credit.MarkAdvertised();
  credit.OnConsume(2048);  // drained
  EXPECT_TRUE(credit.ShouldAdvertise(64 * 1024));
}

// credit_update_on_drain: every drain is advertised (the update wakes a
// sleeping peer early), and nothing when there is nothing new to say.
TEST(CreditAccountTest, OnDrainAdvertisesEveryDrain) {
  CreditAccount credit(256 * 1024, 1 << 20);
  VRPC_ASSERT_OK(credit.OnReceive(100));
  credit.OnConsume(60);
  EXPECT_FALSE(credit.ShouldAdvertise(64 * 1024, /*on_drain=*/true));  // not drained
  credit.OnConsume(40);
  EXPECT_TRUE(credit.ShouldAdvertise(64 * 1024, /*on_drain=*/true));
  credit.MarkAdvertised();
  EXPECT_FALSE(credit.ShouldAdvertise(64 * 1024, /*on_drain=*/true));
}

// A peer that asked for credit (a SEQPACKET sender waiting for room for a
// whole message) learns of every drain until it sends again.
TEST(CreditAccountTest, WaitingPeerLearnsOfEachDrain) {
  CreditAccount credit(256 * 1024, 1 << 20);
  VRPC_ASSERT_OK(credit.OnReceive(100));
  credit.OnCreditRequest();
  credit.MarkAdvertised();  // the OP_CREDIT_UPDATE that answers it
  credit.OnConsume(60);
  EXPECT_FALSE(credit.ShouldAdvertise(64 * 1024));  // not drained yet
  credit.OnConsume(40);
  EXPECT_TRUE(credit.ShouldAdvertise(64 * 1024));
  credit.MarkAdvertised();
  VRPC_ASSERT_OK(credit.OnReceive(10));  // it sent again: no longer waiting
  credit.OnConsume(10);
  EXPECT_FALSE(credit.ShouldAdvertise(64 * 1024));
}

// HARDENING.md row 8 property: whatever the peer says, we never have more in
// flight than the largest window it offered, and credit never exceeds the
// window.
TEST(CreditAccountTest, RandomPeerNeverInflatesCredit) {
  std::mt19937 rng(11);
  CreditAccount credit(4096, 1 << 20);
  uint32_t max_window = 0;
  for (int i = 0; i < 100000; ++i) {
    const uint32_t buf_alloc = rng() % 70000;
    const uint32_t fwd = credit.Snapshot().peer_fwd_cnt + rng() % 70000;
    if (credit.OnPeerCredit(buf_alloc, rng() % 4 == 0 ? rng() : fwd).ok()) {
      max_window = std::max(max_window, credit.PeerWindow());
    }
    ASSERT_LE(credit.PeerCredit(), credit.PeerWindow());
    const uint32_t n = credit.PeerCredit() == 0 ? 0 : rng() % (credit.PeerCredit() + 1);
    credit.OnSend(n);
    ASSERT_LE(credit.InFlight(), max_window);
  }
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
