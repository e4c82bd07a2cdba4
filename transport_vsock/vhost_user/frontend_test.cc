// The frontend against vrpc's own Backend (over a socketpair, the backend on
// a thread of its own) and against a hostile backend that answers with
// crafted replies.
#include "transport_vsock/vhost_user/frontend.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "core/base/logging.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/recording_device.h"
#include "transport_vsock/vhost_user/testing/resources.h"
#include "transport_vsock/vhost_user/testing/scripted_frontend.h"

namespace vrpc {
namespace vhost_user {
namespace {

using testing::CountOpenFds;
using testing::FakeGuestRam;
using testing::MakeEventFd;
using testing::RecordingDevice;
using testing::ScriptedFrontend;

// A Backend + RecordingDevice served on a thread until Stop(); the test may
// look at them only after Stop().
class BackendThread {
 public:
  explicit BackendThread(UniqueFd socket) : backend_(&device_) {
    device_.next_avail[1] = 77;  // what GET_VRING_BASE(1) reports
    VRPC_CHECK(backend_.Attach(std::move(socket)).ok());
    thread_ = std::thread([this] { Run(); });
  }
  ~BackendThread() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  Backend& backend() { return backend_; }
  RecordingDevice& device() { return device_; }
  const absl::Status& ended() const { return ended_; }

 private:
  void Run() {
    while (!stop_ && ended_.ok()) {
      pollfd pfd = {backend_.socket_fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 5) <= 0) continue;
      ended_ = backend_.HandleReadable();
    }
    if (!ended_.ok()) backend_.Disconnect();  // the frontend sees EOF
  }

  RecordingDevice device_;
  Backend backend_;
  std::atomic<bool> stop_{false};
  absl::Status ended_;
  std::thread thread_;
};

std::pair<UniqueFd, UniqueFd> SocketPair() {
  int fds[2];
  VRPC_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST(FrontendTest, QemuLikeHandshakeStartsAndEnablesRings) {
  auto [mine, theirs] = SocketPair();
  BackendThread backend(std::move(theirs));
  Frontend f(std::move(mine));
  FakeGuestRam ram(1 << 20);
  std::vector<UniqueFd> kick, call;

  VRPC_ASSERT_OK_AND_ASSIGN(const uint64_t features, f.GetFeatures());
  EXPECT_EQ(features, testing::kVsockLikeFeatures | kFeatureProtocolFeatures);
  VRPC_ASSERT_OK_AND_ASSIGN(const uint64_t protocol, f.GetProtocolFeatures());
  EXPECT_EQ(protocol & 0x209, 0x209u);
  VRPC_ASSERT_OK(f.SetProtocolFeatures(0x209));
  EXPECT_TRUE(f.reply_ack());
  VRPC_ASSERT_OK_AND_ASSIGN(const uint64_t queues, f.GetQueueNum());
  EXPECT_EQ(queues, 3u);
  VRPC_ASSERT_OK(f.SetOwner());
  VRPC_ASSERT_OK_AND_ASSIGN(const std::vector<uint8_t> config, f.GetConfig(0, 8));
  EXPECT_THAT(config, ::testing::ElementsAre(3, 0, 0, 0, 0, 0, 0, 0));
  VRPC_ASSERT_OK(f.SetFeatures(0x170000000ull));
  const MemoryRegionDesc region = FakeGuestRam::Region(0, 0, ram.size());
  const int ram_fd[1] = {ram.fd()};
  VRPC_ASSERT_OK(f.SetMemTable({&region, 1}, ram_fd));
  for (uint32_t i = 0; i < 3; ++i) {
    kick.push_back(MakeEventFd());
    call.push_back(MakeEventFd());
    VRPC_ASSERT_OK(f.SetVringCall(i, call.back().get()));
    VRPC_ASSERT_OK(f.SetVringNum(i, 128));
    VRPC_ASSERT_OK(f.SetVringBase(i, 0));
    VringAddress a;
    a.index = i;
    a.desc_user_addr = FakeGuestRam::UserAddr(0x10000 * (i + 1));
    a.avail_user_addr = a.desc_user_addr + 0x800;
    a.used_user_addr = a.desc_user_addr + 0x1000;
    VRPC_ASSERT_OK(f.SetVringAddr(a));
    VRPC_ASSERT_OK(f.SetVringKick(i, kick.back().get()));
  }
  for (uint32_t i = 0; i < 3; ++i) VRPC_ASSERT_OK(f.SetVringEnable(i, true));
  VRPC_ASSERT_OK_AND_ASSIGN(const uint16_t base, f.GetVringBase(1));
  EXPECT_EQ(base, 77);
  VRPC_EXPECT_OK(f.CheckUnsolicited());

  backend.Stop();
  VRPC_EXPECT_OK(backend.ended());
  EXPECT_EQ(backend.backend().acked_features(), 0x170000000ull);
  EXPECT_TRUE(backend.backend().ring_started(0));
  EXPECT_FALSE(backend.backend().ring_started(1));  // stopped by GET_VRING_BASE
  EXPECT_TRUE(backend.backend().ring_started(2));
  EXPECT_TRUE(backend.backend().ring_enabled(2));
  EXPECT_EQ(backend.backend().stats().violations, 0u);
}

TEST(FrontendTest, RefusedRequestFailsTheCallThatMadeIt) {
  auto [mine, theirs] = SocketPair();
  BackendThread backend(std::move(theirs));
  Frontend f(std::move(mine), {absl::Milliseconds(500)});
  VRPC_ASSERT_OK(f.SetProtocolFeatures(kProtocolReplyAck | kProtocolMq));
  // Without bit 30 acked, SET_VRING_ENABLE is unsupported: refused, and the
  // session goes on.
  VRPC_ASSERT_OK(f.SetFeatures(kFeatureVersion1));
  EXPECT_THAT(f.SetVringEnable(0, true),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // GET_CONFIG without CONFIG negotiated is refused the same way... by
  // ending the session (no ack is possible for a request with a reply).
  EXPECT_FALSE(f.GetConfig(0, 8).ok());
}

TEST(FrontendTest, BackendHangUpIsUnavailable) {
  auto [mine, theirs] = SocketPair();
  Frontend f(std::move(mine));
  theirs.Reset();
  EXPECT_THAT(f.CheckUnsolicited(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(f.GetFeatures().ok());
}

// A hostile backend: each case sends one crafted reply to GET_* calls.
struct Crafted {
  const char* name;
  MessageHeader header;
  std::vector<uint8_t> payload;
  bool with_fd = false;
};

TEST(FrontendTest, HostileRepliesAreRejectedAndTheirDescriptorsClosed) {
  const std::vector<Crafted> cases = {
      {"wrong request", {kGetProtocolFeatures, kReplyFlags, 8}, EncodeU64(1)},
      {"no reply bit", {kGetFeatures, kVersion, 8}, EncodeU64(1)},
      {"extra flag bits", {kGetFeatures, kReplyFlags | 0x100, 8}, EncodeU64(1)},
      {"short", {kGetFeatures, kReplyFlags, 4}, {1, 2, 3, 4}},
      {"long", {kGetFeatures, kReplyFlags, 12}, std::vector<uint8_t>(12)},
      {"with a descriptor", {kGetFeatures, kReplyFlags, 8}, EncodeU64(1), true},
  };
  for (const Crafted& c : cases) {
    SCOPED_TRACE(c.name);
    auto [mine, theirs] = SocketPair();
    ScriptedFrontend peer(std::move(theirs));  // raw writer; plays the backend
    UniqueFd extra = MakeEventFd();
    const size_t fds_before = CountOpenFds();
    {
      Frontend f(std::move(mine), {absl::Milliseconds(200)});
      const int fd[1] = {extra.get()};
      ASSERT_TRUE(peer.SendRaw(EncodeMessage(c.header, c.payload),
                               c.with_fd ? absl::Span<const int>(fd) : absl::Span<const int>()));
      EXPECT_THAT(f.GetFeatures(), StatusIs(absl::StatusCode::kInvalidArgument));
    }
    EXPECT_EQ(CountOpenFds(), fds_before - 1) << "the frontend's socket and nothing else closed";
  }
}

TEST(FrontendTest, HostileConfigAndVringBaseReplies) {
  auto [mine, theirs] = SocketPair();
  ScriptedFrontend peer(std::move(theirs));
  Frontend f(std::move(mine), {absl::Milliseconds(200)});
  // GET_CONFIG answered for another range.
  peer.Send(kGetConfig, kReplyFlags, EncodeConfig(4, 0, std::vector<uint8_t>(8)));
  EXPECT_THAT(f.GetConfig(0, 8), StatusIs(absl::StatusCode::kInvalidArgument));
  peer.Drain();
  // Refused: an empty reply.
  peer.Send(kGetConfig, kReplyFlags, {});
  EXPECT_THAT(f.GetConfig(0, 8), StatusIs(absl::StatusCode::kUnavailable));
  peer.Drain();
  // GET_VRING_BASE for another ring, and an index beyond 16 bits.
  peer.Send(kGetVringBase, kReplyFlags, EncodeVringState({2, 5}));
  EXPECT_THAT(f.GetVringBase(1), StatusIs(absl::StatusCode::kInvalidArgument));
  peer.Drain();
  peer.Send(kGetVringBase, kReplyFlags, EncodeVringState({1, 0x10000}));
  EXPECT_THAT(f.GetVringBase(1), StatusIs(absl::StatusCode::kInvalidArgument));
  peer.Drain();
  // No reply at all.
  EXPECT_THAT(f.GetFeatures(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Anything unasked is a violation.
  peer.Drain();
  peer.SendU64(kGetFeatures, 1, kReplyFlags);
  EXPECT_THAT(f.CheckUnsolicited(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FrontendTest, ReplyAckNonZeroIsRefusal) {
  auto [mine, theirs] = SocketPair();
  ScriptedFrontend peer(std::move(theirs));
  Frontend f(std::move(mine), {absl::Milliseconds(200)});
  // SET_PROTOCOL_FEATURES itself is sent before REPLY_ACK is in force.
  VRPC_ASSERT_OK(f.SetProtocolFeatures(kProtocolReplyAck));
  peer.Drain();
  peer.SendU64(kSetOwner, 1, kReplyFlags);
  EXPECT_THAT(f.SetOwner(), StatusIs(absl::StatusCode::kFailedPrecondition));
  peer.Drain();
  peer.SendU64(kSetOwner, 0, kReplyFlags);
  VRPC_EXPECT_OK(f.SetOwner());
  EXPECT_THAT(f.SetVringKick(256, -1), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
