// The RPC core over the loopback vsock transport, what only loopback can
// show: the exact payload copies on the receiving side (none) and a link
// reset. Every call kind, deadlines, cancellation, limits and channel states
// run over every transport in call_suite_test.cc.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/blocking_call.h"
#include "core/rpc/channel.h"
#include "core/rpc/client_call.h"
#include "core/rpc/frame.h"
#include "core/rpc/server.h"
#include "core/rpc/service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/test_service.h"
#include "transport_vsock/loopback/loopback_transport.h"

namespace vrpc {
namespace rpc {
namespace {

constexpr uint32_t kPort = 5000;

using rpc_testing::Bytes;
using rpc_testing::TestService;

class RpcLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VRPC_ASSERT_OK_AND_ASSIGN(loop_, io::EventLoopThread::Start("rpc-test"));
    server_ = std::make_unique<Server>(server_options_);
    ASSERT_THAT(server_->RegisterService(&service_), IsOk());
    loop_->RunSync([&] {
      auto link = vsock::LoopbackTransport::Create(loop_->reactor());
      ASSERT_THAT(link, IsOk());
      link_ = *std::move(link);
    });
    StartListening();
    channel_ = MakeChannel(ChannelOptions());
  }
  void TearDown() override {
    if (channel_ != nullptr) channel_->Shutdown();
    for (auto& c : extra_channels_) c->Shutdown();
    server_->Shutdown(absl::Now() + absl::Seconds(1));
    server_.reset();
    channel_.reset();
    extra_channels_.clear();
    loop_->RunSync([&] { link_.reset(); });
    loop_.reset();
  }

  void StartListening() {
    loop_->RunSync([&] {
      auto listener = link_->host().Listen(kPort);
      ASSERT_THAT(listener, IsOk());
      server_->AddListener(*std::move(listener));
    });
  }

  std::shared_ptr<Channel> MakeChannel(ChannelOptions options, uint32_t port = kPort) {
    std::shared_ptr<Channel> channel;
    loop_->RunSync([&] { channel = Channel::Create(link_->guest().ConnectorTo(port), options); });
    return channel;
  }

  absl::Status Unary(const std::string& method, const std::string& req, std::string* resp,
                     ClientContext* ctx = nullptr) {
    ClientContext local;
    SliceChain out;
    absl::Status s = BlockingUnaryCall(channel_, method, ctx ? ctx : &local, Bytes(req), &out);
    if (resp != nullptr) *resp = out.ToString();
    return s;
  }

  ServerOptions server_options_;
  TestService service_;
  std::unique_ptr<io::EventLoopThread> loop_;
  std::unique_ptr<vsock::LoopbackTransport> link_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Channel> channel_;
  std::vector<std::shared_ptr<Channel>> extra_channels_;
};

TEST_F(RpcLoopbackTest, Unary64KiBRequestIsReceivedWithoutCopies) {
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "warm-up", nullptr));
  const uint64_t before = server_->stats().rx_bytes_copied;
  // The handler gets a view of the very bytes the client sent: the loopback
  // passes Slices by reference, the engine queues them, the frame decoder
  // slices them. Zero payload bytes copied.
  const Slice payload = Slice::Copy(std::string(64 * 1024, 'z'));
  ClientContext ctx;
  SliceChain resp;
  VRPC_ASSERT_OK(BlockingUnaryCall(channel_, "/test.Svc/Probe", &ctx, SliceChain(payload), &resp));
  EXPECT_EQ(service_.probe_size.load(), payload.size());
  EXPECT_EQ(service_.probe_first_byte.load(), payload.data());
  // What the receiving transport did copy is framing only: the 12-byte frame
  // headers of HEADERS, MESSAGE and HALF_CLOSE and the HEADERS payload are
  // separate small Slices, and the engine copies Slices under copy_below
  // (128 B) so a peer cannot pin buffers with tiny pieces (HARDENING row 9).
  RequestHeaders h;
  h.method = "/test.Svc/Probe";
  const uint64_t framing = 3 * kFrameHeaderSize + EncodeRequestHeaders(h).size();
  EXPECT_EQ(server_->stats().rx_bytes_copied - before, framing);
}

TEST_F(RpcLoopbackTest, TransportResetIsTransientFailureThenReady) {
  ChannelOptions options;
  options.backoff.initial = absl::Milliseconds(20);
  channel_->Shutdown();
  channel_ = MakeChannel(options);
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "before", nullptr));
  loop_->RunSync([&] { link_->Reset(absl::UnavailableError("device reset")); });
  for (int i = 0; i < 500 && channel_->GetState(false) == ConnectivityState::kReady; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(channel_->WaitForReady(absl::Now() + absl::Seconds(5)));
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "after", &resp));
  EXPECT_EQ(resp, "after");
  EXPECT_GE(channel_->stats().connects, 2u);
}

TEST_F(RpcLoopbackTest, AuthorizeAndAcceptPeerHooks) {
  ServerOptions options;
  std::vector<std::string> peers;
  std::mutex mu;
  options.accept_peer = [&](const std::string& peer) {
    std::lock_guard<std::mutex> lock(mu);
    peers.push_back(peer);
    return peers.size() == 1 ? absl::OkStatus() : absl::PermissionDeniedError("one is enough");
  };
  options.authorize = [](const std::string& method, const std::string& peer) {
    return method == "/test.Svc/Fail" ? absl::PermissionDeniedError("not for " + peer)
                                      : absl::OkStatus();
  };
  Server guarded(options);
  ASSERT_THAT(guarded.RegisterService(&service_), IsOk());
  loop_->RunSync([&] {
    auto listener = link_->host().Listen(5100);
    ASSERT_THAT(listener, IsOk());
    guarded.AddListener(*std::move(listener));
  });
  ChannelOptions quick;
  quick.backoff.initial = absl::Milliseconds(20);
  auto first = MakeChannel(quick, 5100);
  extra_channels_.push_back(first);
  ClientContext ctx1, ctx2, ctx3;
  SliceChain out;
  VRPC_EXPECT_OK(BlockingUnaryCall(first, "/test.Svc/Echo", &ctx1, Bytes("hi"), &out));
  // The handler never runs for a denied method; the connection stays.
  EXPECT_THAT(BlockingUnaryCall(first, "/test.Svc/Fail", &ctx2, Bytes("x"), &out),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::HasSubstr("vsock:3:")));
  EXPECT_THAT(BlockingUnaryCall(first, "/test.Svc/Nope", &ctx3, Bytes("x"), &out),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(first->GetState(false), ConnectivityState::kReady);
  // A second peer is refused at the door.
  auto second = MakeChannel(quick, 5100);
  extra_channels_.push_back(second);
  ClientContext ctx4;
  ctx4.set_timeout(absl::Seconds(5));
  EXPECT_FALSE(BlockingUnaryCall(second, "/test.Svc/Echo", &ctx4, Bytes("x"), &out).ok());
  first->Shutdown();
  second->Shutdown();
  guarded.Shutdown(absl::Now() + absl::Seconds(1));
  const ServerStats stats = guarded.stats();
  EXPECT_EQ(stats.calls_denied, 1u);
  EXPECT_GE(stats.connections_refused, 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(peers.empty());
    EXPECT_EQ(peers[0].rfind("vsock:3:", 0), 0u) << peers[0];
  }
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
