// The backend against hostile frontends (HARDENING.md rows 2 and 6): wrong
// sizes, lying size fields, out-of-range ring indices at every width, bad
// ring sizes, bad memory tables, descriptors where none belong, too many or
// missing descriptors, unknown requests, disconnects mid-message. After each
// case every descriptor and mapping the backend received is released.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/memory.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/backend_harness.h"
#include "transport_vsock/vhost_user/testing/resources.h"

namespace vrpc {
namespace vhost_user {
namespace {

using testing::BackendHarness;
using testing::CountMappings;
using testing::CountOpenFds;
using testing::FakeGuestRam;
using testing::Reply;

constexpr uint32_t kQueues = 3;
constexpr absl::StatusCode kOk = absl::StatusCode::kOk;
constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

// How far the session got before the hostile message.
enum class Stage {
  kFresh,    // nothing negotiated
  kInit,     // QEMU start-up, protocol features 0x8209 (REPLY_ACK included)
  kRunning,  // + memory table, rings 0 and 1 started and enabled
};

struct Case {
  std::string name;
  Stage stage;
  std::function<void(BackendHarness&)> send;
  absl::StatusCode want;  // kOk: the session must survive
  int ack = -1;           // expected REPLY_ACK value, -1: none
};

// Runs one case on a fresh harness and checks the outcome and that nothing
// leaked once the backend disconnected.
void RunCase(const Case& c) {
  SCOPED_TRACE(c.name);
  BackendHarness::Options options;
  options.num_queues = kQueues;
  options.backend.io_timeout = absl::Milliseconds(50);
  BackendHarness h(options);
  const size_t fds = CountOpenFds();
  const size_t maps = CountMappings("vrpc-guest-ram");
  const uint64_t live = MemoryTable::LiveMappings();
  if (c.stage != Stage::kFresh) {
    ASSERT_TRUE(h.QemuInit(0x8209));
  }
  if (c.stage == Stage::kRunning) {
    h.SendMemTable(h.QemuRegions(), kVersion);
    h.QemuStartRings(2);
    h.frontend().SendState(kSetVringEnable, 0, 1);
    h.frontend().SendState(kSetVringEnable, 1, 1);
    VRPC_ASSERT_OK(h.Pump());
    ASSERT_TRUE(h.backend().ring_started(1));
  }
  c.send(h);
  const absl::Status s = h.Pump();
  EXPECT_EQ(s.code(), c.want) << s;
  if (c.ack >= 0) {
    std::optional<Reply> r = h.frontend().ReadReply(absl::Milliseconds(200));
    ASSERT_TRUE(r.has_value()) << "missing REPLY_ACK";
    EXPECT_EQ(r->header.flags, kReplyFlags);
    EXPECT_EQ(r->payload, EncodeU64(static_cast<uint64_t>(c.ack)));
  }
  EXPECT_FALSE(h.frontend().Readable()) << "unexpected bytes from the backend";
  if (c.want == kOk) {
    // Still alive and answering.
    EXPECT_EQ(h.GetU64(kGetQueueNum), kQueues);
  } else {
    EXPECT_TRUE(h.device().running.empty());
    EXPECT_EQ(h.backend().memory(), nullptr);
  }
  h.backend().Disconnect();
  // The backend's end of the socketpair is closed; the frontend's may be.
  const size_t closed = h.frontend().fd() < 0 ? 2 : 1;
  EXPECT_EQ(CountOpenFds(), fds - closed) << "descriptor leak";
  EXPECT_EQ(CountMappings("vrpc-guest-ram"), maps) << "mapping leak";
  EXPECT_EQ(MemoryTable::LiveMappings(), live);
}

void RunAll(const std::vector<Case>& cases) {
  for (const Case& c : cases) RunCase(c);
}

std::vector<uint8_t> Zeros(size_t n) { return std::vector<uint8_t>(n); }

// ---------------------------------------------------------------------------

TEST(BackendHostileTest, WrongPayloadSizes) {
  struct Fixed {
    uint32_t request;
    uint32_t size;
  };
  const Fixed fixed[] = {
      {kGetFeatures, 0},       {kSetFeatures, 8},        {kSetOwner, 0},
      {kResetOwner, 0},        {kSetVringNum, 8},        {kSetVringAddr, 40},
      {kSetVringBase, 8},      {kGetVringBase, 8},       {kSetVringKick, 8},
      {kSetVringCall, 8},      {kSetVringErr, 8},        {kGetProtocolFeatures, 0},
      {kSetProtocolFeatures, 8}, {kGetQueueNum, 0},      {kSetVringEnable, 8},
      {kGetMaxMemSlots, 0},    {kAddMemReg, 40},         {kRemMemReg, 40},
      {kSetMemTable, 40},      {kGetConfig, 20},         {kSetConfig, 13},
  };
  std::vector<Case> cases;
  for (const Fixed& f : fixed) {
    std::vector<uint32_t> sizes = {f.size + 1, f.size + 8};
    if (f.size > 0) sizes.push_back(f.size - 1);
    if (f.size >= 8) sizes.push_back(f.size / 2);
    for (uint32_t size : sizes) {
      // A 12-byte config access (size field 0) is well-formed.
      if ((f.request == kSetConfig || f.request == kGetConfig) && size == 12) continue;
      for (bool need_reply : {false, true}) {
        const uint32_t flags = kVersion | (need_reply ? kFlagNeedReply : 0);
        // Messages with their own reply get no ack; the others get 1.
        const int ack = need_reply && !RequestHasReply(f.request) ? 1 : -1;
        cases.push_back({absl::StrCat(RequestName(f.request), " size ", size,
                                      need_reply ? " need_reply" : ""),
                         Stage::kInit,
                         [=](BackendHarness& h) {
                           h.frontend().Send(f.request, flags, Zeros(size));
                         },
                         kInvalid, ack});
      }
    }
  }
  RunAll(cases);
}

TEST(BackendHostileTest, LyingSizeFieldsAndHugeMessages) {
  RunAll({
      // Says 8, sends 4, then hangs up: disconnect mid-message.
      {"short then EOF", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().SendWithSize(kSetFeatures, kVersion, 8, Zeros(4));
         h.frontend().ShutdownWrite();
       },
       absl::StatusCode::kDataLoss},
      // Says 8, sends 4, stays connected: the backend stops waiting.
      {"short then stall", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().SendWithSize(kSetFeatures, kVersion, 8, Zeros(4));
       },
       absl::StatusCode::kDeadlineExceeded},
      // Says 0, sends 8: the extra bytes are read as the next header.
      {"long payload becomes garbage header", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().SendWithSize(kSetOwner, kVersion, 0, Zeros(8));
         h.frontend().ShutdownWrite();
       },
       absl::StatusCode::kDataLoss},
      {"size 0x1001", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().SendWithSize(kSetConfig, kVersion, 0x1001, Zeros(0x1001));
       },
       kInvalid},
      {"size 0xffffffff", Stage::kFresh,
       [](BackendHarness& h) {
         h.frontend().SendWithSize(kSetMemTable, kVersion, 0xffffffffu, Zeros(16));
       },
       kInvalid},
      {"header split, then EOF", Stage::kFresh,
       [](BackendHarness& h) {
         (void)h.frontend().SendRaw(std::vector<uint8_t>{1, 0, 0, 0, 1});
         h.frontend().ShutdownWrite();
       },
       absl::StatusCode::kDataLoss},
      {"mid-payload EOF with descriptors", Stage::kRunning,
       [](BackendHarness& h) {
         const std::vector<uint8_t> full = EncodeMessage(
             {kSetMemTable, kVersion, 8 + 2 * 32},
             EncodeMemTable(h.QemuRegions()));
         (void)h.frontend().SendRaw(absl::MakeConstSpan(full).subspan(0, 30),
                                    {h.ram().fd(), h.ram().fd()});
         h.frontend().Close();
       },
       absl::StatusCode::kDataLoss},
  });
}

TEST(BackendHostileTest, BadFlags) {
  std::vector<Case> cases;
  for (uint32_t flags : {0x0u, 0x2u, 0x3u, 0x5u, 0xdu, 0x11u, 0x80000001u}) {
    cases.push_back({absl::StrCat("flags 0x", absl::Hex(flags)), Stage::kInit,
                     [=](BackendHarness& h) {
                       h.frontend().SendEmpty(kSetOwner, flags);
                     },
                     kInvalid});
  }
  RunAll(cases);
}

TEST(BackendHostileTest, RingIndicesAtFullWidth) {
  const uint64_t bad[] = {kQueues,       kQueues + 1, 0x10000,    0x10001,
                          0x10002,       0xff,        0x100 | kQueues,
                          0x1ffu,        UINT32_MAX,  uint64_t{1} << 32};
  std::vector<Case> cases;
  for (uint64_t index : bad) {
    const uint32_t index32 = static_cast<uint32_t>(index);
    for (uint32_t request : {kSetVringNum, kSetVringBase, kGetVringBase, kSetVringEnable}) {
      if (index > UINT32_MAX) continue;
      cases.push_back({absl::StrCat(RequestName(request), " index ", index),
                       Stage::kRunning,
                       [=](BackendHarness& h) {
                         h.frontend().SendState(request, index32, 1);
                       },
                       kInvalid});
    }
    if (index <= UINT32_MAX) {
      cases.push_back({absl::StrCat("SET_VRING_ADDR index ", index), Stage::kRunning,
                       [=](BackendHarness& h) {
                         VringAddress a = BackendHarness::RingAddress(2);
                         a.index = index32;
                         h.frontend().Send(kSetVringAddr, kVersion, EncodeVringAddress(a));
                       },
                       kInvalid});
    }
    for (uint32_t request : {kSetVringKick, kSetVringCall, kSetVringErr}) {
      // With a descriptor (which must be closed) and with NOFD.
      cases.push_back({absl::StrCat(RequestName(request), " index ", index),
                       Stage::kRunning,
                       [=](BackendHarness& h) {
                         h.frontend().SendU64(request, index, kVersion, {h.spare_fd(0)});
                       },
                       kInvalid});
      cases.push_back({absl::StrCat(RequestName(request), " nofd index ", index),
                       Stage::kRunning,
                       [=](BackendHarness& h) {
                         h.frontend().SendU64(request, index | kVringNoFdMask);
                       },
                       kInvalid});
    }
  }
  // Unknown high bits in the fd request, even with a valid index.
  cases.push_back({"kick with bit 9", Stage::kInit,
                   [](BackendHarness& h) {
                     h.frontend().SendU64(kSetVringKick, 0x200, kVersion, {h.kick_fd(0)});
                   },
                   kInvalid});
  RunAll(cases);
}

TEST(BackendHostileTest, BadRingSizesBasesAndEnable) {
  std::vector<Case> cases;
  for (uint32_t num : {0u, 3u, 100u, 129u, 65536u, 0x80000000u, UINT32_MAX}) {
    cases.push_back({absl::StrCat("num ", num), Stage::kInit,
                     [=](BackendHarness& h) {
                       h.frontend().SendState(kSetVringNum, 0, num);
                     },
                     kInvalid});
  }
  for (uint32_t base : {0x10000u, UINT32_MAX}) {
    cases.push_back({absl::StrCat("base ", base), Stage::kInit,
                     [=](BackendHarness& h) {
                       h.frontend().SendState(kSetVringBase, 0, base);
                     },
                     kInvalid});
  }
  cases.push_back({"enable 2", Stage::kInit,
                   [](BackendHarness& h) { h.frontend().SendState(kSetVringEnable, 0, 2); },
                   kInvalid});
  // Reconfiguring a started ring.
  for (uint32_t request : {kSetVringNum, kSetVringBase}) {
    cases.push_back({absl::StrCat(RequestName(request), " on started ring"),
                     Stage::kRunning,
                     [=](BackendHarness& h) {
                       h.frontend().SendState(request, 0, 64);
                     },
                     absl::StatusCode::kFailedPrecondition});
  }
  cases.push_back({"SET_VRING_ADDR on started ring", Stage::kRunning,
                   [](BackendHarness& h) {
                     h.frontend().Send(kSetVringAddr, kVersion,
                                       EncodeVringAddress(BackendHarness::RingAddress(0)));
                   },
                   absl::StatusCode::kFailedPrecondition});
  // A ring too large for the region that holds its start.
  cases.push_back({"ring overruns region", Stage::kInit,
                   [](BackendHarness& h) {
                     h.SendMemTable(h.QemuRegions(), kVersion);
                     VringAddress a = BackendHarness::RingAddress(0);
                     a.desc_user_addr = FakeGuestRam::UserAddr(h.ram().size() - 0x100);
                     h.frontend().SendState(kSetVringNum, 0, 32768);
                     h.frontend().Send(kSetVringAddr, kVersion, EncodeVringAddress(a));
                   },
                   kInvalid});
  cases.push_back({"ring address in the hole", Stage::kInit,
                   [](BackendHarness& h) {
                     h.SendMemTable(h.QemuRegions(), kVersion);
                     VringAddress a = BackendHarness::RingAddress(0);
                     a.used_user_addr = FakeGuestRam::UserAddr(0xb0000);
                     h.frontend().Send(kSetVringAddr, kVersion, EncodeVringAddress(a));
                   },
                   kInvalid});
  cases.push_back({"ring outside memory found at kick", Stage::kInit,
                   [](BackendHarness& h) {
                     VringAddress a = BackendHarness::RingAddress(0);
                     a.avail_user_addr = UINT64_MAX - 4;
                     h.frontend().SendState(kSetVringNum, 0, 128);
                     h.frontend().Send(kSetVringAddr, kVersion, EncodeVringAddress(a));
                     h.frontend().SendU64(kSetVringKick, 0, kVersion, {h.kick_fd(0)});
                     h.SendMemTable(h.QemuRegions(), kVersion | kFlagNeedReply);
                   },
                   kInvalid, 1});
  cases.push_back({"SET_VRING_ADDR log flag and unknown flags", Stage::kInit,
                   [](BackendHarness& h) {
                     VringAddress a = BackendHarness::RingAddress(0);
                     a.flags = 2;
                     h.frontend().Send(kSetVringAddr, kVersion, EncodeVringAddress(a));
                   },
                   kInvalid});
  RunAll(cases);
}

TEST(BackendHostileTest, BadMemoryTables) {
  auto table = [](std::vector<MemoryRegionDesc> regions, int fds, uint32_t flags) {
    return [=](BackendHarness& h) { h.SendMemTable(regions, flags, fds); };
  };
  const uint64_t end = 4 * 1024 * 1024;
  std::vector<MemoryRegionDesc> nine;
  for (uint64_t i = 0; i < 9; ++i) nine.push_back(FakeGuestRam::Region(i * 4096, i * 4096, 4096));
  const uint32_t need = kVersion | kFlagNeedReply;
  RunAll({
      {"nregions 0", Stage::kInit, table({}, 0, need), kInvalid, 1},
      {"nregions 9", Stage::kInit, table(nine, 9, need), kInvalid, 1},
      {"nregions field 2 with 1 region",
       Stage::kInit,
       [](BackendHarness& h) {
         std::vector<uint8_t> p = EncodeMemTable({FakeGuestRam::Region(0, 0, 4096)});
         p[0] = 2;
         h.frontend().Send(kSetMemTable, kVersion, p, {h.ram().fd()});
       },
       kInvalid},
      {"guest_addr overflow", Stage::kInit,
       table({{UINT64_MAX - 0x10, 0x1000, FakeGuestRam::UserAddr(0), 0}}, 1, need), kInvalid, 1},
      {"user_addr overflow", Stage::kInit,
       table({{0, 0x1000, UINT64_MAX - 0x10, 0}}, 1, need), kInvalid, 1},
      {"mmap_offset overflow", Stage::kInit,
       table({{0, 0x1000, FakeGuestRam::UserAddr(0), UINT64_MAX - 0x10}}, 1, need), kInvalid, 1},
      {"size 0", Stage::kInit, table({FakeGuestRam::Region(0, 0, 0)}, 1, need), kInvalid, 1},
      {"past end of memfd", Stage::kInit,
       table({FakeGuestRam::Region(0, end - 4096, 8192)}, 1, need), kInvalid, 1},
      {"huge region", Stage::kInit,
       table({FakeGuestRam::Region(0, 0, uint64_t{1} << 50)}, 1, need), kInvalid, 1},
      {"overlap guest", Stage::kInit,
       table({FakeGuestRam::Region(0, 0, 8192), FakeGuestRam::Region(4096, 8192, 8192)}, 2, need),
       kInvalid, 1},
      {"overlap user", Stage::kInit,
       table({FakeGuestRam::Region(0, 0, 8192), FakeGuestRam::Region(65536, 4096, 8192)}, 2, need),
       kInvalid, 1},
      {"missing fd", Stage::kInit, table(std::vector<MemoryRegionDesc>{
           FakeGuestRam::Region(0, 0, 4096), FakeGuestRam::Region(8192, 8192, 4096)}, 1, need),
       kInvalid, 1},
      {"extra fd", Stage::kInit, table({FakeGuestRam::Region(0, 0, 4096)}, 3, need), kInvalid, 1},
      {"non-file fd", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().Send(kSetMemTable, kVersion,
                           EncodeMemTable({FakeGuestRam::Region(0, 0, 4096)}),
                           {h.kick_fd(0)});
       },
       kInvalid},
      {"ADD_MEM_REG without fd", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().Send(kAddMemReg, kVersion,
                           EncodeSingleRegion(FakeGuestRam::Region(0, 0, 4096)));
       },
       kInvalid},
      {"ADD_MEM_REG overlapping", Stage::kRunning,
       [](BackendHarness& h) {
         h.frontend().Send(kAddMemReg, kVersion,
                           EncodeSingleRegion(FakeGuestRam::Region(0x1000, 0, 4096)),
                           {h.ram().fd()});
       },
       kInvalid},
      {"ADD_MEM_REG overflow", Stage::kInit,
       [](BackendHarness& h) {
         h.frontend().Send(kAddMemReg, kVersion,
                           EncodeSingleRegion({0, 4096, 0, UINT64_MAX}), {h.ram().fd()});
       },
       kInvalid},
      {"REM_MEM_REG unknown region", Stage::kRunning,
       [](BackendHarness& h) {
         h.frontend().Send(kRemMemReg, kVersion,
                           EncodeSingleRegion(FakeGuestRam::Region(0, 0, 4096)));
       },
       kInvalid},
      {"REM_MEM_REG with two fds", Stage::kRunning,
       [](BackendHarness& h) {
         h.frontend().Send(kRemMemReg, kVersion, EncodeSingleRegion(h.QemuRegions()[0]),
                           {h.ram().fd(), h.ram().fd()});
       },
       kInvalid},
      // Allowed by vhost-user.rst: one (ignored, closed) descriptor.
      {"REM_MEM_REG with one fd", Stage::kRunning,
       [](BackendHarness& h) {
         h.frontend().Send(kRemMemReg, kVersion, EncodeSingleRegion(h.QemuRegions()[0]),
                           {h.ram().fd()});
       },
       kOk},
  });
}

TEST(BackendHostileTest, MemoryCap) {
  BackendHarness::Options options;
  options.backend.max_memory_bytes = 1024 * 1024;
  BackendHarness h(options);
  const size_t fds = CountOpenFds();
  h.SendMemTable(h.QemuRegions(), kVersion);
  EXPECT_THAT(h.Pump(), StatusIs(kInvalid));
  h.backend().Disconnect();
  EXPECT_EQ(CountOpenFds(), fds - 1);
}

TEST(BackendHostileTest, DescriptorsWhereNoneBelong) {
  std::vector<Case> cases;
  struct Msg {
    uint32_t request;
    std::vector<uint8_t> payload;
  };
  const std::vector<Msg> msgs = {
      {kGetFeatures, {}},
      {kSetFeatures, EncodeU64(testing::kQemuAckedFeatures)},
      {kSetOwner, {}},
      {kResetOwner, {}},
      {kSetVringNum, EncodeVringState({2, 128})},
      {kSetVringBase, EncodeVringState({2, 0})},
      {kGetVringBase, EncodeVringState({2, 0})},
      {kSetVringAddr, EncodeVringAddress(BackendHarness::RingAddress(2))},
      {kGetProtocolFeatures, {}},
      {kSetProtocolFeatures, EncodeU64(0x8209)},
      {kGetQueueNum, {}},
      {kSetVringEnable, EncodeVringState({2, 1})},
      {kGetConfig, EncodeConfig(0, 0, Zeros(8))},
      {kSetConfig, EncodeConfig(0, 0, Zeros(1))},
      {kGetMaxMemSlots, {}},
      // NOFD set, yet a descriptor attached.
      {kSetVringKick, EncodeU64(0 | kVringNoFdMask)},
      {kSetVringCall, EncodeU64(1 | kVringNoFdMask)},
      {kSetVringErr, EncodeU64(2 | kVringNoFdMask)},
  };
  for (const Msg& m : msgs) {
    for (int n : {1, 3}) {
      cases.push_back({absl::StrCat(RequestName(m.request), " with ", n, " fds"),
                       Stage::kInit,
                       [=](BackendHarness& h) {
                         std::vector<int> fds(static_cast<size_t>(n), h.spare_fd(0));
                         h.frontend().Send(m.request, kVersion, m.payload, fds);
                       },
                       kInvalid});
    }
  }
  // Missing descriptors.
  for (uint32_t request : {kSetVringKick, kSetVringCall, kSetVringErr}) {
    cases.push_back({absl::StrCat(RequestName(request), " without fd"), Stage::kInit,
                     [=](BackendHarness& h) { h.frontend().SendU64(request, 0); },
                     kInvalid});
    cases.push_back({absl::StrCat(RequestName(request), " with 2 fds"), Stage::kInit,
                     [=](BackendHarness& h) {
                       h.frontend().SendU64(request, 0, kVersion,
                                            {h.spare_fd(0), h.spare_fd(1)});
                     },
                     kInvalid});
  }
  RunAll(cases);
}

TEST(BackendHostileTest, TooManyDescriptors) {
  std::vector<Case> cases;
  for (size_t n : {kMaxFds + 1, size_t{64}, size_t{200}}) {
    cases.push_back({absl::StrCat(n, " fds"), Stage::kRunning,
                     [=](BackendHarness& h) {
                       std::vector<int> fds(n, h.spare_fd(0));
                       h.frontend().SendU64(kSetVringCall, 0, kVersion, fds);
                     },
                     absl::StatusCode::kResourceExhausted});
  }
  RunAll(cases);
}

TEST(BackendHostileTest, UnknownAndUnsupportedRequests) {
  std::vector<Case> cases;
  for (uint32_t request : {0u, 45u, 1000u, 0xffffffffu, uint32_t{kSetLogBase},
                           uint32_t{kIotlbMsg}, uint32_t{kResetDevice},
                           uint32_t{kGetInflightFd}, uint32_t{kSetStatus}}) {
    const std::string name = RequestName(request);
    // Without NEED_REPLY: the session ends.
    cases.push_back({name, Stage::kInit,
                     [=](BackendHarness& h) {
                       h.frontend().Send(request, kVersion, Zeros(8), {h.spare_fd(0)});
                     },
                     absl::StatusCode::kUnimplemented});
    // With NEED_REPLY (REPLY_ACK negotiated): a failure ack, and it goes on.
    cases.push_back({name + " need_reply", Stage::kRunning,
                     [=](BackendHarness& h) {
                       h.frontend().Send(request, kVersion | kFlagNeedReply, Zeros(16),
                                         {h.spare_fd(0), h.spare_fd(1)});
                     },
                     kOk, 1});
  }
  // Gated on protocol features that were not acked.
  cases.push_back({"GET_CONFIG without CONFIG", Stage::kFresh,
                   [](BackendHarness& h) {
                     h.frontend().Send(kGetConfig, kVersion, EncodeConfig(0, 0, Zeros(8)));
                   },
                   absl::StatusCode::kUnimplemented});
  cases.push_back({"ADD_MEM_REG without CONFIGURE_MEM_SLOTS", Stage::kFresh,
                   [](BackendHarness& h) {
                     h.frontend().Send(kAddMemReg, kVersion,
                                       EncodeSingleRegion(FakeGuestRam::Region(0, 0, 4096)),
                                       {h.ram().fd()});
                   },
                   absl::StatusCode::kUnimplemented});
  cases.push_back({"SET_VRING_ENABLE without bit 30", Stage::kFresh,
                   [](BackendHarness& h) { h.frontend().SendState(kSetVringEnable, 0, 1); },
                   absl::StatusCode::kUnimplemented});
  RunAll(cases);
}

TEST(BackendHostileTest, FeatureNegotiation) {
  RunAll({
      {"SET_FEATURES unoffered bit", Stage::kInit,
       [](BackendHarness& h) { h.frontend().SendU64(kSetFeatures, 1ull << 40); },
       kInvalid},
      {"SET_PROTOCOL_FEATURES unoffered bit", Stage::kInit,
       [](BackendHarness& h) { h.frontend().SendU64(kSetProtocolFeatures, 0x8209 | (1 << 5)); },
       kInvalid},
      {"SET_FEATURES change while running", Stage::kRunning,
       [](BackendHarness& h) { h.frontend().SendU64(kSetFeatures, kFeatureVersion1); },
       absl::StatusCode::kFailedPrecondition},
      {"SET_FEATURES same while running", Stage::kRunning,
       [](BackendHarness& h) {
         h.frontend().SendU64(kSetFeatures, testing::kQemuAckedFeatures);
       },
       kOk},
      {"device refuses features", Stage::kInit,
       [](BackendHarness& h) {
         h.device().refuse_features = true;
         h.frontend().SendU64(kSetFeatures, testing::kQemuAckedFeatures,
                              kVersion | kFlagNeedReply);
       },
       kInvalid, 1},
  });
}

TEST(BackendHostileTest, ReconnectAfterViolation) {
  BackendHarness h;
  const size_t fds = CountOpenFds();
  ASSERT_TRUE(h.QemuInit());
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(2);
  h.frontend().SendState(kSetVringNum, 0x10001, 128);
  EXPECT_THAT(h.Pump(), StatusIs(kInvalid));
  EXPECT_EQ(h.device().events.back(), "reset");
  EXPECT_EQ(h.backend().stats().violations, 1u);
  h.Reconnect();
  ASSERT_TRUE(h.QemuInit());
  h.SendMemTable(h.QemuRegions(), kVersion);
  h.QemuStartRings(2);
  VRPC_ASSERT_OK(h.Pump());
  EXPECT_TRUE(h.backend().ring_started(0));
  h.backend().Disconnect();
  EXPECT_EQ(CountOpenFds(), fds - 1);
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
