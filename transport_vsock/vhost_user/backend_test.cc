// The backend against well-behaved frontends: QEMU 7.2's exact handshake
// (FACTS.md §0), the CONFIGURE_MEM_SLOTS variant, three rings, repeated
// messages that replace resources, and reconnection.
#include "transport_vsock/vhost_user/backend.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/memory.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/backend_harness.h"
#include "transport_vsock/vhost_user/testing/resources.h"

namespace vrpc {
namespace vhost_user {
namespace {

using ::testing::ElementsAre;
using testing::BackendHarness;
using testing::CountMappings;
using testing::CountOpenFds;
using testing::kQemuAckedFeatures;
using testing::kQemuRingSize;
using testing::kVsockLikeFeatures;
using testing::Reply;

constexpr char kRamName[] = "vrpc-guest-ram";

// Checks that a harness releases everything it was given: the counts taken
// at construction (after the harness made its own memfd and eventfds) are
// reached again once the session ends.
class BackendTest : public ::testing::Test {
 protected:
  BackendTest() : BackendTest(BackendHarness::Options()) {}
  explicit BackendTest(BackendHarness::Options options)
      : h_(std::make_unique<BackendHarness>(options)),
        fds_(CountOpenFds()),
        mappings_(CountMappings(kRamName)),
        live_(MemoryTable::LiveMappings()) {}

  void ExpectReleased() {
    h_->backend().Disconnect();
    EXPECT_EQ(h_->device().memory, nullptr);
    EXPECT_TRUE(h_->device().running.empty());
    // The backend's end of the socketpair is closed; the frontend's may be.
    const size_t closed = h_->frontend().fd() < 0 ? 2 : 1;
    EXPECT_EQ(CountOpenFds(), fds_ - closed) << "descriptor leak";
    EXPECT_EQ(CountMappings(kRamName), mappings_) << "mapping leak";
    EXPECT_EQ(MemoryTable::LiveMappings(), live_);
  }

  // Expects a REPLY_ACK for |request| carrying |value|.
  void ExpectAck(uint32_t request, uint64_t value) {
    std::optional<Reply> r = h_->frontend().ReadReply();
    ASSERT_TRUE(r.has_value()) << "no ack for " << RequestName(request);
    EXPECT_EQ(r->header.request, request);
    EXPECT_EQ(r->header.flags, kReplyFlags);
    EXPECT_EQ(r->payload, EncodeU64(value));
  }

  void ExpectNoReply() {
    EXPECT_FALSE(h_->frontend().Readable()) << "unexpected reply";
  }

  std::unique_ptr<BackendHarness> h_;
  size_t fds_;
  size_t mappings_;
  uint64_t live_;
};

class QemuSequenceTest : public BackendTest {
 protected:
  static BackendHarness::Options Opts() {
    BackendHarness::Options o;
    o.backend.offer_configure_mem_slots = false;  // FACTS.md §0 offers 0x209
    return o;
  }
  QemuSequenceTest() : BackendTest(Opts()) {}
};

// FACTS.md §0, message by message, asserting every reply and hook.
TEST_F(QemuSequenceTest, Qemu72HandshakeRunAndPowerOff) {
  BackendHarness& h = *h_;
  EXPECT_EQ(h.GetU64(kGetFeatures), kVsockLikeFeatures | kFeatureProtocolFeatures);
  EXPECT_EQ(h.GetU64(kGetProtocolFeatures), 0x209u);
  h.frontend().SendU64(kSetProtocolFeatures, 0x209);
  EXPECT_EQ(h.GetU64(kGetQueueNum), 3u);
  h.frontend().SendEmpty(kSetOwner);
  EXPECT_EQ(h.GetU64(kGetFeatures), kVsockLikeFeatures | kFeatureProtocolFeatures);
  for (uint32_t i = 0; i < 2; ++i) {
    h.frontend().SendU64(kSetVringCall, i, kVersion, {h.spare_fd(i)});
    h.frontend().SendU64(kSetVringErr, i, kVersion, {h.err_fd(i)});
  }
  std::optional<Reply> config =
      h.Call(kGetConfig, kVersion, EncodeConfig(0, 0, std::vector<uint8_t>(8)));
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->header.request, kGetConfig);
  EXPECT_EQ(config->header.flags, 0x5u);
  EXPECT_EQ(config->payload,
            EncodeConfig(0, 0, std::vector<uint8_t>{3, 0, 0, 0, 0, 0, 0, 0}));
  // SET_VRING_CALL x2 replaces the first call fds.
  const size_t before_replace = CountOpenFds();
  for (uint32_t i = 0; i < 2; ++i) {
    h.frontend().SendU64(kSetVringCall, i, kVersion, {h.call_fd(i)});
  }
  h.frontend().SendU64(kSetFeatures, kQemuAckedFeatures);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_EQ(CountOpenFds(), before_replace) << "replaced call fds not closed";
  EXPECT_EQ(h.backend().acked_features(), kQemuAckedFeatures);
  ExpectNoReply();

  // Guest memory: "the guest" writes before and after the table arrives.
  std::memcpy(h.ram().data() + 0x1000, "low", 3);
  h.SendMemTable(h.QemuRegions(), kVersion | kFlagNeedReply);
  VRPC_ASSERT_OK(h.Pump());
  ExpectAck(kSetMemTable, 0);
  std::shared_ptr<const MemoryTable> table = h.backend().memory();
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->regions().size(), 2u);
  std::memcpy(h.ram().data() + 0x300000, "high", 4);
  EXPECT_EQ(std::memcmp(table->GuestToHost(0x1000, 3), "low", 3), 0);
  EXPECT_EQ(std::memcmp(table->GuestToHost(0x300000, 4), "high", 4), 0);

  h.QemuStartRings(2);
  VRPC_ASSERT_OK(h.Pump());
  ExpectNoReply();
  EXPECT_TRUE(h.backend().ring_started(0));
  EXPECT_TRUE(h.backend().ring_started(1));
  EXPECT_FALSE(h.backend().ring_started(2));  // QEMU keeps the event queue
  EXPECT_FALSE(h.backend().ring_enabled(0));  // bit 30 acked: disabled
  h.frontend().SendState(kSetVringEnable, 0, 1);
  h.frontend().SendState(kSetVringEnable, 1, 1);
  VRPC_ASSERT_OK(h.Pump());
  ExpectNoReply();

  const testing::RecordingDevice& dev = h.device();
  ASSERT_EQ(dev.running.count(0), 1u);
  const RingConfig& rx = dev.running.at(0);
  EXPECT_EQ(rx.num, kQemuRingSize);
  EXPECT_EQ(rx.base, 0);
  EXPECT_EQ(rx.desc_guest_addr, BackendHarness::RingGuestAddr(0));
  EXPECT_EQ(rx.avail_guest_addr, BackendHarness::RingGuestAddr(0) + 0x800);
  EXPECT_EQ(rx.used_guest_addr, BackendHarness::RingGuestAddr(0) + 0x1000);
  EXPECT_EQ(rx.desc_user_addr, BackendHarness::RingAddress(0).desc_user_addr);
  EXPECT_TRUE(rx.enabled);
  EXPECT_TRUE(rx.event_idx);
  ASSERT_NE(rx.kick, nullptr);
  ASSERT_NE(rx.call, nullptr);
  ASSERT_NE(rx.err, nullptr);
  // The device sees, through its table, what the guest puts in the ring.
  std::memcpy(h.ram().data() + BackendHarness::RingGuestAddr(1), "desc", 4);
  EXPECT_EQ(std::memcmp(dev.ring_memory.at(1)->GuestToHost(
                            dev.running.at(1).desc_guest_addr, 4),
                        "desc", 4),
            0);

  // Guest power-off.
  h.device().next_avail[0] = 17;
  h.device().next_avail[1] = 0xfffe;
  h.frontend().SendState(kSetVringEnable, 0, 0);
  h.frontend().SendState(kSetVringEnable, 1, 0);
  std::optional<Reply> base0 = h.Call(kGetVringBase, kVersion, EncodeVringState({0, 0}));
  std::optional<Reply> base1 = h.Call(kGetVringBase, kVersion, EncodeVringState({1, 0}));
  ASSERT_TRUE(base0.has_value());
  ASSERT_TRUE(base1.has_value());
  EXPECT_EQ(base0->header.flags, 0x5u);
  EXPECT_EQ(base0->payload, EncodeVringState({0, 17}));
  EXPECT_EQ(base1->payload, EncodeVringState({1, 0xfffe}));
  EXPECT_FALSE(h.backend().ring_started(0));

  EXPECT_THAT(h.device().events,
              ElementsAre("read_config(0,8)",
                          "features(0x170000000)", "memory(2)", "started(0)",
                          "started(1)", "updated(0,enabled=1)",
                          "updated(1,enabled=1)", "updated(0,enabled=0)",
                          "updated(1,enabled=0)", "stopped(0)", "stopped(1)"));

  // QEMU exits: EOF.
  table.reset();
  h.frontend().Close();
  EXPECT_THAT(h.Pump(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(h.device().events.back(), "reset");
  EXPECT_EQ(h.backend().stats().violations, 0u);
  ExpectReleased();
}

// With CONFIGURE_MEM_SLOTS offered (the default), QEMU 7.2 asks
// GET_MAX_MEM_SLOTS and sends ADD_MEM_REG per region instead of the table.
TEST_F(BackendTest, MemSlotsVariant) {
  BackendHarness& h = *h_;
  EXPECT_EQ(h.GetU64(kGetProtocolFeatures), 0x8209u);
  ASSERT_TRUE(h.QemuInit(0x8209));
  EXPECT_EQ(h.GetU64(kGetMaxMemSlots), 32u);
  for (const MemoryRegionDesc& r : h.QemuRegions()) {
    h.frontend().Send(kAddMemReg, kVersion | kFlagNeedReply, EncodeSingleRegion(r),
                      {h.ram().fd()});
  }
  VRPC_ASSERT_OK(h.Pump());
  ExpectAck(kAddMemReg, 0);
  ExpectAck(kAddMemReg, 0);
  ASSERT_NE(h.backend().memory(), nullptr);
  EXPECT_EQ(h.backend().memory()->regions().size(), 2u);
  h.QemuStartRings(2);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_TRUE(h.backend().ring_started(1));
  // Removing the low region (no ring there) is fine; removing the one that
  // holds the started rings is a violation.
  h.frontend().Send(kRemMemReg, kVersion | kFlagNeedReply,
                    EncodeSingleRegion(h.QemuRegions()[0]));
  VRPC_ASSERT_OK(h.Pump());
  ExpectAck(kRemMemReg, 0);
  EXPECT_EQ(h.backend().memory()->regions().size(), 1u);
  h.frontend().Send(kRemMemReg, kVersion | kFlagNeedReply,
                    EncodeSingleRegion(h.QemuRegions()[1]));
  EXPECT_THAT(h.Pump(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ExpectAck(kRemMemReg, 1);
  ExpectReleased();
}

// crosvm gives the backend all three vsock rings.
TEST_F(BackendTest, ThreeRings) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  h.frontend().SendU64(kSetVringCall, 2, kVersion, {h.call_fd(2)});
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(3);
  for (uint32_t i = 0; i < 3; ++i) h.frontend().SendState(kSetVringEnable, i, 1);
  VRPC_ASSERT_OK(h.Pump());
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(h.backend().ring_started(i));
    EXPECT_TRUE(h.backend().ring_enabled(i));
  }
  EXPECT_EQ(h.device().running.size(), 3u);
  ExpectReleased();
}

// Without VHOST_USER_F_PROTOCOL_FEATURES acked, rings start enabled and
// SET_VRING_ENABLE is not available.
TEST_F(BackendTest, LegacyFrontendRingsStartEnabled) {
  BackendHarness& h = *h_;
  h.frontend().SendU64(kSetFeatures, kFeatureVersion1);
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(2);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_TRUE(h.backend().ring_started(0));
  EXPECT_TRUE(h.device().running.at(0).enabled);
  EXPECT_FALSE(h.device().running.at(0).event_idx);
  h.frontend().SendState(kSetVringEnable, 0, 0);
  EXPECT_THAT(h.Pump(), StatusIs(absl::StatusCode::kUnimplemented));
  ExpectReleased();
}

TEST_F(BackendTest, RingStartsWhenLastConditionArrives) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  // Kick, num and addresses first; memory last.
  h.frontend().SendU64(kSetVringKick, 0, kVersion, {h.kick_fd(0)});
  h.frontend().SendState(kSetVringNum, 0, 256);
  h.frontend().Send(kSetVringAddr, kVersion,
                    EncodeVringAddress(BackendHarness::RingAddress(0)));
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_FALSE(h.backend().ring_started(0));
  h.SendMemTable(h.QemuRegions(), kVersion);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_TRUE(h.backend().ring_started(0));
  EXPECT_EQ(h.device().running.at(0).num, 256u);
  // Polling mode: KICK with the NOFD flag also starts a ring (no fd).
  h.frontend().SendState(kSetVringNum, 1, 64);
  h.frontend().Send(kSetVringAddr, kVersion,
                    EncodeVringAddress(BackendHarness::RingAddress(1)));
  h.frontend().SendU64(kSetVringKick, 1 | kVringNoFdMask);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_TRUE(h.backend().ring_started(1));
  EXPECT_EQ(h.device().running.at(1).kick, nullptr);
  ExpectReleased();
}

TEST_F(BackendTest, RepeatedMemTableReleasesThePreviousOne) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  const size_t live = MemoryTable::LiveMappings();
  const size_t fds = CountOpenFds();  // includes the call/err fds held
  h.SendMemTable(h.QemuRegions(), kVersion);
  VRPC_ASSERT_OK(h.Pump());
  std::shared_ptr<const MemoryTable> first = h.backend().memory();
  EXPECT_EQ(MemoryTable::LiveMappings(), live + 2);
  for (int i = 0; i < 5; ++i) {
    h.SendMemTable(h.QemuRegions(), kVersion);
    VRPC_ASSERT_OK(h.Pump());
  }
  // The first table lives on while someone (a device, a Slice) holds it;
  // the intermediate ones are gone.
  EXPECT_EQ(MemoryTable::LiveMappings(), live + 4);
  first.reset();
  EXPECT_EQ(MemoryTable::LiveMappings(), live + 2);
  EXPECT_EQ(CountOpenFds(), fds);
  ExpectReleased();
}

TEST_F(BackendTest, MemTableChangeUnderStartedRings) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(2);
  VRPC_ASSERT_OK(h.Pump());
  // Same layout again (e.g. a hotplug elsewhere): rings keep running and the
  // device is told.
  std::vector<MemoryRegionDesc> more = h.QemuRegions();
  h.SendMemTable(more, kVersion);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_EQ(h.device().events.back(), "memory(2)");
  EXPECT_TRUE(h.backend().ring_started(0));
  // A table that moves ring memory to other guest addresses is refused.
  more[1].guest_addr += 0x100000000ull;
  h.SendMemTable(more, kVersion | kFlagNeedReply);
  EXPECT_THAT(h.Pump(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ExpectAck(kSetMemTable, 1);
  ExpectReleased();
}

TEST_F(BackendTest, RepeatedKickAndCallReleaseTheOldDescriptor) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(1);
  VRPC_ASSERT_OK(h.Pump());
  const size_t fds = CountOpenFds();
  for (int i = 0; i < 10; ++i) {
    h.frontend().SendU64(kSetVringCall, 0, kVersion, {h.spare_fd(0)});
    h.frontend().SendU64(kSetVringKick, 0, kVersion, {h.spare_fd(1)});
    h.frontend().SendU64(kSetVringErr, 0, kVersion, {h.spare_fd(2)});
    VRPC_ASSERT_OK(h.Pump());
    EXPECT_EQ(CountOpenFds(), fds);
  }
  // The device got each new descriptor.
  EXPECT_EQ(h.device().events.back(), "updated(0,enabled=0)");
  // NOFD clears the call descriptor.
  h.frontend().SendU64(kSetVringCall, 0 | kVringNoFdMask);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_EQ(h.device().running.at(0).call, nullptr);
  EXPECT_EQ(CountOpenFds(), fds - 1);
  ExpectReleased();
}

TEST_F(BackendTest, RestartAfterGetVringBase) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(1);
  VRPC_ASSERT_OK(h.Pump());
  h.device().next_avail[0] = 300;
  std::optional<Reply> r = h.Call(kGetVringBase, kVersion, EncodeVringState({0, 0}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, EncodeVringState({0, 300}));
  // A second GET_VRING_BASE on the stopped ring reports the same base.
  r = h.Call(kGetVringBase, kVersion, EncodeVringState({0, 0}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, EncodeVringState({0, 300}));
  // Restart as QEMU does (vm resume): BASE, KICK; NUM/ADDR may be re-sent.
  h.frontend().SendState(kSetVringBase, 0, 300);
  h.frontend().SendU64(kSetVringKick, 0, kVersion, {h.kick_fd(0)});
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_TRUE(h.backend().ring_started(0));
  EXPECT_EQ(h.device().running.at(0).base, 300);
  EXPECT_EQ(h.device().running.at(0).call, nullptr);  // dropped at stop
  ExpectReleased();
}

TEST_F(BackendTest, ConfigSpace) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  // Partial read.
  std::optional<Reply> r = h.Call(kGetConfig, kVersion, EncodeConfig(0, 0, std::vector<uint8_t>(4)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, EncodeConfig(0, 0, std::vector<uint8_t>{3, 0, 0, 0}));
  // Out of range: an empty reply, and the session continues.
  for (uint32_t offset : {4u, 8u, 0xfffffff0u}) {
    r = h.Call(kGetConfig, kVersion, EncodeConfig(offset, 0, std::vector<uint8_t>(8)));
    ASSERT_TRUE(r.has_value()) << offset;
    EXPECT_EQ(r->header.size, 0u);
  }
  // SET_CONFIG: refused by the read-only device (ack 1), accepted when
  // writable.
  h.frontend().Send(kSetConfig, kVersion | kFlagNeedReply,
                    EncodeConfig(0, 0, std::vector<uint8_t>{9}));
  VRPC_ASSERT_OK(h.Pump());
  ExpectAck(kSetConfig, 1);
  h.device().config_writable = true;
  h.frontend().Send(kSetConfig, kVersion | kFlagNeedReply,
                    EncodeConfig(0, 0, std::vector<uint8_t>{9}));
  VRPC_ASSERT_OK(h.Pump());
  ExpectAck(kSetConfig, 0);
  r = h.Call(kGetConfig, kVersion, EncodeConfig(0, 0, std::vector<uint8_t>(1)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, EncodeConfig(0, 0, std::vector<uint8_t>{9}));
  ExpectReleased();
}

TEST_F(BackendTest, ReplyAckOnlyWhenNegotiated) {
  BackendHarness& h = *h_;
  // Before SET_PROTOCOL_FEATURES, NEED_REPLY is ignored.
  h.frontend().SendEmpty(kSetOwner, kVersion | kFlagNeedReply);
  VRPC_ASSERT_OK(h.Pump());
  ExpectNoReply();
  h.frontend().SendU64(kSetProtocolFeatures, kProtocolReplyAck);
  h.frontend().SendEmpty(kSetOwner, kVersion | kFlagNeedReply);
  VRPC_ASSERT_OK(h.Pump());
  ExpectAck(kSetOwner, 0);
  // A GET_* keeps its own reply and gets no extra ack.
  EXPECT_TRUE(h.GetU64(kGetQueueNum).has_value());
  ExpectNoReply();
  ExpectReleased();
}

TEST_F(BackendTest, ResetOwnerStopsRingsKeepsMemory) {
  BackendHarness& h = *h_;
  ASSERT_TRUE(h.QemuInit());
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(2);
  h.frontend().SendEmpty(kResetOwner);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_FALSE(h.backend().ring_started(0));
  EXPECT_FALSE(h.backend().ring_started(1));
  EXPECT_NE(h.backend().memory(), nullptr);
  ExpectReleased();
}

TEST_F(BackendTest, ReconnectAfterDisconnect) {
  BackendHarness& h = *h_;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(h.QemuInit()) << round;
    h.SendMemTable(h.QemuRegions(), kVersion);
    h.QemuStartRings(2);
    VRPC_ASSERT_OK(h.Pump());
    EXPECT_TRUE(h.backend().ring_started(1));
    h.frontend().Close();
    EXPECT_THAT(h.Pump(), StatusIs(absl::StatusCode::kUnavailable));
    // Not usable until Disconnect(); then a new frontend may attach.
    EXPECT_THAT(h.backend().HandleReadable(),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    h.Reconnect();
    EXPECT_EQ(h.backend().acked_features(), 0u);
    EXPECT_EQ(h.backend().memory(), nullptr);
  }
  EXPECT_EQ(h.backend().stats().sessions, 4u);
  ExpectReleased();
}

TEST_F(BackendTest, AttachTwiceIsRefused) {
  UniqueFd other;
  testing::ScriptedFrontend second = testing::ScriptedFrontend::CreatePair(&other);
  EXPECT_THAT(h_->backend().Attach(std::move(other)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  second.Close();
  ExpectReleased();
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
