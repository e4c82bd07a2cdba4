#include "transport_vsock/vhost_user/connection.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/resources.h"
#include "transport_vsock/vhost_user/testing/scripted_frontend.h"

namespace vrpc {
namespace vhost_user {
namespace {

using testing::CountOpenFds;
using testing::MakeEventFd;
using testing::ScriptedFrontend;

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fds_before_ = CountOpenFds();
    UniqueFd backend_end;
    frontend_ = ScriptedFrontend::CreatePair(&backend_end);
    conn_ = std::make_unique<Connection>(std::move(backend_end),
                                         absl::Milliseconds(200));
  }
  void TearDown() override {
    conn_.reset();
    frontend_.Close();
    EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak";
  }

  // Receives, expecting a message.
  Message ReceiveMessage() {
    absl::StatusOr<std::optional<Message>> m = conn_->Receive();
    EXPECT_THAT(m, IsOk());
    if (!m.ok() || !m->has_value()) {
      ADD_FAILURE() << "no message";
      return Message();
    }
    return std::move(**m);
  }

  size_t fds_before_ = 0;
  ScriptedFrontend frontend_{UniqueFd()};
  std::unique_ptr<Connection> conn_;
};

TEST_F(ConnectionTest, NothingToRead) {
  absl::StatusOr<std::optional<Message>> m = conn_->Receive();
  ASSERT_THAT(m, IsOk());
  EXPECT_FALSE(m->has_value());
}

TEST_F(ConnectionTest, MessageWithDescriptors) {
  UniqueFd a = MakeEventFd(), b = MakeEventFd();
  const size_t with_sent = CountOpenFds();
  frontend_.SendU64(kSetVringCall, 1, kVersion, {a.get(), b.get()});
  {
    Message m = ReceiveMessage();
    EXPECT_EQ(m.header.request, kSetVringCall);
    EXPECT_EQ(m.header.size, 8u);
    ASSERT_EQ(m.fds.size(), 2u);
    EXPECT_TRUE(m.fds[0].valid());
    // Received descriptors are close-on-exec.
    EXPECT_EQ(::fcntl(m.fds[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    EXPECT_EQ(CountOpenFds(), with_sent + 2);
  }
  EXPECT_EQ(CountOpenFds(), with_sent);
}

TEST_F(ConnectionTest, ExactlyMaxFdsAccepted) {
  std::vector<UniqueFd> owned;
  std::vector<int> raw;
  for (size_t i = 0; i < kMaxFds; ++i) {
    owned.push_back(MakeEventFd());
    raw.push_back(owned.back().get());
  }
  frontend_.SendEmpty(kGetFeatures);
  frontend_.Send(kSetVringCall, kVersion, EncodeU64(0), raw);
  EXPECT_TRUE(ReceiveMessage().fds.empty());
  EXPECT_EQ(ReceiveMessage().fds.size(), kMaxFds);
}

TEST_F(ConnectionTest, TooManyFdsIsAnErrorAndNothingLeaks) {
  std::vector<UniqueFd> owned;
  std::vector<int> raw;
  for (size_t i = 0; i < kMaxFds + 8; ++i) {
    owned.push_back(MakeEventFd());
    raw.push_back(owned.back().get());
  }
  const size_t with_sent = CountOpenFds();
  frontend_.Send(kSetVringCall, kVersion, EncodeU64(0), raw);
  EXPECT_THAT(conn_->Receive(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(CountOpenFds(), with_sent);
}

TEST_F(ConnectionTest, SplitHeaderAndLatePayload) {
  const std::vector<uint8_t> bytes = EncodeMessage({kSetFeatures, kVersion, 8}, EncodeU64(42));
  std::thread writer([&] {
    ASSERT_TRUE(frontend_.SendRaw(absl::MakeConstSpan(bytes).subspan(0, 5)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(frontend_.SendRaw(absl::MakeConstSpan(bytes).subspan(5, 10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(frontend_.SendRaw(absl::MakeConstSpan(bytes).subspan(15)));
  });
  // Wait for the first fragment so Receive does not return "nothing".
  while (true) {
    absl::StatusOr<std::optional<Message>> m = conn_->Receive();
    ASSERT_THAT(m, IsOk());
    if (m->has_value()) {
      EXPECT_EQ((*m)->header.request, kSetFeatures);
      EXPECT_EQ((*m)->payload, EncodeU64(42));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  writer.join();
}

TEST_F(ConnectionTest, DescriptorsOnThePayloadPartAreCollected) {
  UniqueFd a = MakeEventFd();
  const std::vector<uint8_t> bytes = EncodeMessage({kSetVringKick, kVersion, 8}, EncodeU64(0));
  ASSERT_TRUE(frontend_.SendRaw(absl::MakeConstSpan(bytes).subspan(0, kHeaderSize)));
  ASSERT_TRUE(frontend_.SendRaw(absl::MakeConstSpan(bytes).subspan(kHeaderSize), {a.get()}));
  EXPECT_EQ(ReceiveMessage().fds.size(), 1u);
}

TEST_F(ConnectionTest, EofBetweenMessages) {
  frontend_.ShutdownWrite();
  EXPECT_THAT(conn_->Receive(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(ConnectionTest, EofMidHeaderAndMidPayload) {
  UniqueFd a = MakeEventFd();
  const size_t with_sent = CountOpenFds();
  const std::vector<uint8_t> bytes = EncodeMessage({kSetVringKick, kVersion, 8}, EncodeU64(0));
  ASSERT_TRUE(frontend_.SendRaw(absl::MakeConstSpan(bytes).subspan(0, 16), {a.get()}));
  frontend_.ShutdownWrite();
  EXPECT_THAT(conn_->Receive(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(CountOpenFds(), with_sent);
}

TEST_F(ConnectionTest, EofMidHeader) {
  ASSERT_TRUE(frontend_.SendRaw(std::vector<uint8_t>{1, 0, 0}));
  frontend_.ShutdownWrite();
  EXPECT_THAT(conn_->Receive(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(ConnectionTest, StalledPayloadTimesOut) {
  UniqueFd a = MakeEventFd();
  const size_t with_sent = CountOpenFds();
  frontend_.SendWithSize(kSetVringKick, kVersion, 8, std::vector<uint8_t>(4), {a.get()});
  const absl::Time start = absl::Now();
  EXPECT_THAT(conn_->Receive(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_EQ(CountOpenFds(), with_sent);
}

TEST_F(ConnectionTest, OversizedPayloadRejectedBeforeReading) {
  frontend_.SendWithSize(kSetConfig, kVersion, kMaxPayloadSize + 1, {});
  EXPECT_THAT(conn_->Receive(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ConnectionTest, SendReplyAndDescriptors) {
  UniqueFd a = MakeEventFd();
  MessageHeader h{kGetFeatures, kReplyFlags, 8};
  VRPC_ASSERT_OK(conn_->Send(h, EncodeU64(7), {a.get()}));
  std::optional<testing::Reply> r = frontend_.ReadReply();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header.flags, kReplyFlags);
  EXPECT_EQ(r->payload, EncodeU64(7));
  EXPECT_EQ(r->fds, 1u);
}

TEST_F(ConnectionTest, SendToClosedPeer) {
  frontend_.Close();
  MessageHeader h{kGetFeatures, kReplyFlags, 8};
  EXPECT_THAT(conn_->Send(h, EncodeU64(7)), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
