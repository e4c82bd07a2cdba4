// The RPC core end to end over the loopback vsock transport (two protocol
// engines on an io_uring reactor thread): every call kind, deadlines,
// cancellation, metadata, status codes, limits, concurrency, head-of-line
// blocking, channel states and zero copy.
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
#include "transport_vsock/loopback/loopback_transport.h"

namespace vrpc {
namespace rpc {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kPort = 5000;

SliceChain Bytes(const std::string& s) { return SliceChain(Slice::Copy(s)); }

// The test service, over raw bytes.
class TestService : public GenericService {
 public:
  TestService() {
    AddMethod("/test.Svc/Echo", MethodKind::kUnary, [](ServerCall& call) {
      SliceChain req;
      if (!call.Read(&req)) return absl::InvalidArgumentError("no request");
      for (const auto& [k, v] : call.context().client_metadata()) {
        call.context().AddInitialMetadata("echo-" + k, v);
        call.context().AddTrailingMetadata("trailer-" + k, v);
      }
      return call.Write(std::move(req));  // the same Slices: no copy
    });
    AddMethod("/test.Svc/Fail", MethodKind::kUnary, [](ServerCall& call) {
      SliceChain req;
      call.Read(&req);
      return absl::NotFoundError("no such thing: " + req.ToString());
    });
    AddMethod("/test.Svc/Count", MethodKind::kServerStreaming, [](ServerCall& call) {
      SliceChain req;
      if (!call.Read(&req)) return absl::InvalidArgumentError("no request");
      const int n = std::stoi(req.ToString());
      for (int i = 0; i < n; ++i) {
        if (absl::Status s = call.Write(Bytes(std::to_string(i))); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    AddMethod("/test.Svc/Sum", MethodKind::kClientStreaming, [](ServerCall& call) {
      size_t total = 0;
      SliceChain m;
      while (call.Read(&m)) total += m.size();
      return call.Write(Bytes(std::to_string(total)));
    });
    AddMethod("/test.Svc/Bidi", MethodKind::kBidiStreaming, [](ServerCall& call) {
      SliceChain m;
      while (call.Read(&m)) {
        if (absl::Status s = call.Write(Bytes("re:" + m.ToString())); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    AddMethod("/test.Svc/Probe", MethodKind::kUnary, [this](ServerCall& call) {
      SliceChain req;
      if (!call.Read(&req)) return absl::InvalidArgumentError("no request");
      probe_first_byte = req.slices().empty() ? nullptr : req.slices()[0].data();
      probe_size = req.size();
      return call.Write(Bytes("ok"));
    });
    AddMethod("/test.Svc/Hang", MethodKind::kBidiStreaming, [this](ServerCall& call) {
      // Never reads; waits to be cancelled.
      hang_started.fetch_add(1);
      while (!call.context().IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      hang_cancelled.fetch_add(1);
      return absl::OkStatus();
    });
  }
  std::atomic<const uint8_t*> probe_first_byte{nullptr};
  std::atomic<size_t> probe_size{0};
  std::atomic<int> hang_started{0};
  std::atomic<int> hang_cancelled{0};
};

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

TEST_F(RpcLoopbackTest, UnaryWithMetadataBothWays) {
  ClientContext ctx;
  ctx.AddMetadata("x-id", "42");
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "hello", &resp, &ctx));
  EXPECT_EQ(resp, "hello");
  EXPECT_THAT(ctx.server_initial_metadata(),
              ::testing::Contains(::testing::Pair("echo-x-id", "42")));
  EXPECT_THAT(ctx.server_trailing_metadata(),
              ::testing::Contains(::testing::Pair("trailer-x-id", "42")));
  EXPECT_EQ(channel_->GetState(false), ConnectivityState::kReady);
}

TEST_F(RpcLoopbackTest, ServerStreaming) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Count", &ctx);
  ASSERT_TRUE(call.Write(Bytes("100")));
  call.WritesDone();
  SliceChain m;
  int i = 0;
  while (call.Read(&m)) EXPECT_EQ(m.ToString(), std::to_string(i++));
  EXPECT_EQ(i, 100);
  VRPC_EXPECT_OK(call.Finish());
}

TEST_F(RpcLoopbackTest, ClientStreaming) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Sum", &ctx);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(call.Write(Bytes(std::string(1000, 'a'))));
  call.WritesDone();
  SliceChain m;
  ASSERT_TRUE(call.Read(&m));
  EXPECT_EQ(m.ToString(), "50000");
  VRPC_EXPECT_OK(call.Finish());
}

TEST_F(RpcLoopbackTest, BidiStreaming) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Bidi", &ctx);
  SliceChain m;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(call.Write(Bytes(std::to_string(i))));
    ASSERT_TRUE(call.Read(&m));
    EXPECT_EQ(m.ToString(), "re:" + std::to_string(i));
  }
  call.WritesDone();
  EXPECT_FALSE(call.Read(&m));
  VRPC_EXPECT_OK(call.Finish());
}

TEST_F(RpcLoopbackTest, StatusCodesAndMessagesPassThrough) {
  EXPECT_THAT(Unary("/test.Svc/Fail", "widget", nullptr),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such thing: widget")));
  EXPECT_THAT(Unary("/test.Svc/Nope", "", nullptr),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("/test.Svc/Nope")));
  // The channel is still fine.
  VRPC_EXPECT_OK(Unary("/test.Svc/Echo", "ok", nullptr));
}

TEST_F(RpcLoopbackTest, DeadlineExceededReachesTheHandler) {
  ClientContext ctx;
  ctx.set_timeout(absl::Milliseconds(200));
  BlockingCall call(channel_, "/test.Svc/Hang", &ctx);
  EXPECT_THAT(call.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  for (int i = 0; i < 200 && service_.hang_cancelled.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service_.hang_cancelled.load(), 1);
}

TEST_F(RpcLoopbackTest, ClientCancellationReachesTheHandler) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Hang", &ctx);
  for (int i = 0; i < 200 && service_.hang_started.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ctx.TryCancel();
  EXPECT_THAT(call.Finish(), StatusIs(absl::StatusCode::kCancelled));
  for (int i = 0; i < 200 && service_.hang_cancelled.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service_.hang_cancelled.load(), 1);
}

TEST_F(RpcLoopbackTest, OversizedMessageFailsTheCallNotTheChannel) {
  std::string big(5 << 20, 'b');  // over the default 4 MiB
  EXPECT_THAT(Unary("/test.Svc/Echo", big, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted));
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "after", &resp));
  EXPECT_EQ(resp, "after");
  EXPECT_EQ(channel_->GetState(false), ConnectivityState::kReady);
}

TEST_F(RpcLoopbackTest, ThousandConcurrentCalls) {
  constexpr int kCalls = 1000;
  struct Waiter : ClientCallObserver {
    std::string got;
    absl::Status status;
    std::promise<void> done;
    void OnMessage(SliceChain m) override { got = m.ToString(); }
    void OnFinish(const absl::Status& s, const Metadata&) override {
      status = s;
      done.set_value();
    }
  };
  std::vector<std::unique_ptr<Waiter>> waiters;
  std::vector<std::unique_ptr<ClientContext>> contexts;
  std::vector<std::shared_ptr<ClientCall>> calls;
  for (int i = 0; i < kCalls; ++i) {
    waiters.push_back(std::make_unique<Waiter>());
    contexts.push_back(std::make_unique<ClientContext>());
    calls.push_back(ClientCall::Start(channel_, "/test.Svc/Echo", contexts.back().get(),
                                      waiters.back().get()));
    calls.back()->Write(Bytes("call " + std::to_string(i)));
    calls.back()->WritesDone();
  }
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(waiters[i]->done.get_future().wait_for(std::chrono::seconds(60)),
              std::future_status::ready);
    if (waiters[i]->status.ok() && waiters[i]->got == "call " + std::to_string(i)) ++ok;
  }
  EXPECT_EQ(ok, kCalls);
  EXPECT_EQ(channel_->stats().calls_succeeded, static_cast<uint64_t>(kCalls));
}

TEST_F(RpcLoopbackTest, HandlerThatNeverReadsDoesNotBlockOtherCalls) {
  // A client streams far more than one call's window to a handler that
  // never reads; the connection keeps serving other calls.
  ClientContext stuck_ctx;
  auto stuck = std::make_unique<BlockingCall>(channel_, "/test.Svc/Hang", &stuck_ctx);
  std::thread writer([&] {
    for (int i = 0; i < 64; ++i) {
      if (!stuck->Write(Bytes(std::string(256 * 1024, 'w')))) break;  // blocks on the window
    }
  });
  for (int i = 0; i < 200 && service_.hang_started.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 20; ++i) {
    std::string resp;
    VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "through " + std::to_string(i), &resp));
    EXPECT_EQ(resp, "through " + std::to_string(i));
  }
  stuck_ctx.TryCancel();
  writer.join();
  EXPECT_THAT(stuck->Finish(), StatusIs(absl::StatusCode::kCancelled));
}

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

TEST_F(RpcLoopbackTest, ChannelStatesConnectingToNothingThenReconnect) {
  ChannelOptions options;
  options.backoff.initial = absl::Milliseconds(50);
  options.backoff.max = absl::Milliseconds(200);
  auto channel = MakeChannel(options, /*port=*/6000);  // nothing listens yet
  extra_channels_.push_back(channel);
  struct Seen {
    std::mutex mu;
    std::vector<ConnectivityState> states;
  };
  auto rec = std::make_shared<Seen>();  // outlives the test body if it fails
  channel->AddStateWatcher([rec](const ChannelStateInfo& info) {
    std::lock_guard<std::mutex> lock(rec->mu);
    if (rec->states.empty() || rec->states.back() != info.state) rec->states.push_back(info.state);
  });
  EXPECT_EQ(channel->GetState(true), ConnectivityState::kIdle);
  ASSERT_TRUE(channel->WaitForStateChange(ConnectivityState::kIdle, absl::Now() + absl::Seconds(5)));
  for (int i = 0; i < 500 && channel->GetState(false) != ConnectivityState::kTransientFailure; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(channel->GetState(false), ConnectivityState::kTransientFailure);
  EXPECT_THAT(channel->state_info().last_error, StatusIs(absl::StatusCode::kUnavailable));
  // Fail fast in TRANSIENT_FAILURE...
  ClientContext ctx;
  SliceChain out;
  EXPECT_THAT(BlockingUnaryCall(channel, "/test.Svc/Echo", &ctx, Bytes("x"), &out),
              StatusIs(absl::StatusCode::kUnavailable));
  // ...unless the call waits for ready: start serving port 6000 and it lands.
  ClientContext wait_ctx;
  wait_ctx.set_wait_for_ready(true);
  wait_ctx.set_timeout(absl::Seconds(10));
  std::future<absl::Status> waited = std::async(std::launch::async, [&] {
    SliceChain r;
    return BlockingUnaryCall(channel, "/test.Svc/Echo", &wait_ctx, Bytes("late"), &r);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  loop_->RunSync([&] {
    auto listener = link_->host().Listen(6000);
    ASSERT_THAT(listener, IsOk());
    server_->AddListener(*std::move(listener));
  });
  VRPC_EXPECT_OK(waited.get());
  EXPECT_EQ(channel->GetState(false), ConnectivityState::kReady);
  std::lock_guard<std::mutex> lock(rec->mu);
  const std::vector<ConnectivityState>& seen = rec->states;
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(seen[0], ConnectivityState::kConnecting);
  EXPECT_EQ(seen[1], ConnectivityState::kTransientFailure);
  EXPECT_EQ(seen.back(), ConnectivityState::kReady);
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

TEST_F(RpcLoopbackTest, CreditBlockedIsObservedAndRecovers) {
  struct Seen {
    std::mutex mu;
    std::vector<bool> blocked;
  };
  auto rec = std::make_shared<Seen>();
  channel_->AddStateWatcher([rec](const ChannelStateInfo& info) {
    std::lock_guard<std::mutex> lock(rec->mu);
    if (rec->blocked.empty() || rec->blocked.back() != info.credit_blocked) {
      rec->blocked.push_back(info.credit_blocked);
    }
  });
  // 3 MiB through a 256 KiB vsock window.
  const std::string big(3 << 20, 'c');
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", big, &resp));
  EXPECT_EQ(resp.size(), big.size());
  std::lock_guard<std::mutex> lock(rec->mu);
  const std::vector<bool>& blocked = rec->blocked;
  EXPECT_THAT(blocked, ::testing::Contains(true));
  ASSERT_FALSE(blocked.empty());
  EXPECT_FALSE(blocked.back());
  EXPECT_FALSE(channel_->state_info().credit_blocked);
}

TEST_F(RpcLoopbackTest, GracefulShutdownDrainsRunningCalls) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Bidi", &ctx);
  ASSERT_TRUE(call.Write(Bytes("one")));
  SliceChain m;
  ASSERT_TRUE(call.Read(&m));
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    call.WritesDone();
  });
  server_->Shutdown(absl::Now() + absl::Seconds(5));  // waits for the call
  closer.join();
  VRPC_EXPECT_OK(call.Finish());
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
