// File: tests/rpc/call_suite.cc
#include "tests/rpc/call_suite.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_matchers.h"
#include "core/rpc/blocking_call.h"
#include "core/rpc/frame.h"
#include "gmock/gmock.h"
#include "transport_vsock/dial/dial.h"

namespace vrpc {
namespace rpc_testing {

using ::testing::HasSubstr;
using namespace ::vrpc::rpc;  // NOLINT: the suite speaks the RPC API

std::string TransportParamName(const ::testing::TestParamInfo<TransportParam>& info) {
  return info.param.name;
}

// ---------------------------------------------------------------------------
// Fixture

void CallSuite::SetUp() {
  char dir[] = "/tmp/vrpc-calls-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  dir_ = dir;
  VRPC_ASSERT_OK_AND_ASSIGN(server_loop_, io::EventLoopThread::Start("rpc-server"));
  if (!GetParam().one_loop) {
    VRPC_ASSERT_OK_AND_ASSIGN(client_loop_, io::EventLoopThread::Start("rpc-client"));
  }
  server_ = std::make_unique<Server>(server_options_);
  if (GetParam().inline_unary) {
    for (const char* method : {"Echo", "Fail", "/test.Svc/Probe"}) {
      ASSERT_THAT(service_.RunInline(method), IsOk());
    }
  }
  ASSERT_THAT(server_->RegisterService(&service_), IsOk());
  if (GetParam().dial_first) {
    channel_ = MakeChannel(ChannelOptions());
    ListenOn(kPort);
  } else {
    ListenOn(kPort);
    channel_ = MakeChannel(ChannelOptions());
  }
}

void CallSuite::TearDown() {
  if (channel_ != nullptr) channel_->Shutdown();
  for (auto& c : extra_channels_) c->Shutdown();
  if (server_ != nullptr) server_->Shutdown(absl::Now() + absl::Seconds(1));
  server_.reset();
  channel_.reset();
  extra_channels_.clear();
  client_loop_.reset();
  server_loop_.reset();
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ::unlink(absl::StrCat(dir_, "/", e->d_name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir_.c_str());
}

void CallSuite::ListenOn(uint32_t port) {
  const std::string address = GetParam().listen_address(dir_, port);
  dial::DialOptions options;
  options.notify_mode = GetParam().notify_mode;
  server_loop().RunSync([&] {
    auto listener = dial::Listen(address, server_loop().reactor(), options);
    ASSERT_THAT(listener, IsOk()) << address;
    server_->AddListener(*std::move(listener));
  });
}

std::shared_ptr<Channel> CallSuite::MakeChannel(ChannelOptions options, uint32_t port) {
  const std::string address = GetParam().dial_address(dir_, port);
  dial::DialOptions dial_options;
  dial_options.notify_mode = GetParam().notify_mode;
  std::shared_ptr<Channel> channel;
  client_loop().RunSync([&] {
    auto connector = dial::Dial(address, client_loop().reactor(), dial_options);
    ASSERT_THAT(connector, IsOk()) << address;
    channel = Channel::Create(*std::move(connector), options);
  });
  return channel;
}

absl::Status CallSuite::Unary(const std::string& method, const std::string& req,
                              std::string* resp, ClientContext* ctx) {
  ClientContext local;
  SliceChain out;
  absl::Status s = BlockingUnaryCall(channel_, method, ctx ? ctx : &local, Bytes(req), &out);
  if (resp != nullptr) *resp = out.ToString();
  return s;
}

namespace {

// Polls |pred| for up to 10 s.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 2000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// A byte pattern that a shifted or truncated copy cannot match.
std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// One callback-API call with one request message, and what it got back.
struct OneMessageCall : ClientCallObserver {
  ClientContext context;
  std::string got;
  absl::Status status;
  std::promise<void> done;
  std::shared_ptr<ClientCall> call;

  void Start(const std::shared_ptr<Channel>& channel, const std::string& method,
             const std::string& request) {
    call = ClientCall::Start(channel, method, &context, this);
    call->Write(Bytes(request));
    call->WritesDone();
  }
  bool Wait() {
    return done.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  }
  void OnMessage(SliceChain m) override { got = m.ToString(); }
  void OnFinish(const absl::Status& s, const Metadata&) override {
    status = s;
    done.set_value();
  }
};

// Records channel state changes (deduplicated), and credit-blocked flips.
struct StateLog {
  std::mutex mu;
  std::vector<ConnectivityState> states;
  std::vector<bool> blocked;
  void Attach(Channel& channel, const std::shared_ptr<StateLog>& self) {
    channel.AddStateWatcher([self](const ChannelStateInfo& info) {
      std::lock_guard<std::mutex> lock(self->mu);
      if (self->states.empty() || self->states.back() != info.state) {
        self->states.push_back(info.state);
      }
      if (self->blocked.empty() || self->blocked.back() != info.credit_blocked) {
        self->blocked.push_back(info.credit_blocked);
      }
    });
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// Every call kind

TEST_P(CallSuite, UnaryWithMetadataBothWays) {
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

TEST_P(CallSuite, LargeMessagesArriveIntact) {
  for (size_t size : {size_t{1}, size_t{4095}, size_t{64 * 1024}, size_t{1 << 20},
                      size_t{(4 << 20) - 1024}}) {
    const std::string req = Pattern(size, static_cast<uint32_t>(size));
    std::string resp;
    VRPC_ASSERT_OK(Unary("/test.Svc/Echo", req, &resp)) << size;
    EXPECT_TRUE(resp == req) << "echo of " << size << " bytes differs";
  }
}

TEST_P(CallSuite, ServerStreaming) {
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

TEST_P(CallSuite, ClientStreaming) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Sum", &ctx);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(call.Write(Bytes(std::string(1000, 'a'))));
  call.WritesDone();
  SliceChain m;
  ASSERT_TRUE(call.Read(&m));
  EXPECT_EQ(m.ToString(), "50000");
  VRPC_EXPECT_OK(call.Finish());
}

TEST_P(CallSuite, BidiStreaming) {
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

// ---- Calls served by reactors on the server's loop (ServeOnReactor) ----

TEST_P(CallSuite, ReactorClientStreamingConsumesAsItReads) {
  // 24 x 256 KiB is six times a call's window: the stream keeps moving only
  // if each OnMessage returns window to the client.
  ClientContext ctx;
  ctx.set_deadline(absl::Now() + absl::Seconds(20));
  BlockingCall call(channel_, "/test.Svc/SumOnLoop", &ctx);
  const std::string block = Pattern(256 * 1024, 7);
  for (int i = 0; i < 24; ++i) ASSERT_TRUE(call.Write(Bytes(block))) << i;
  call.WritesDone();
  SliceChain m;
  ASSERT_TRUE(call.Read(&m));
  EXPECT_EQ(m.ToString(), std::to_string(24 * block.size()));
  VRPC_EXPECT_OK(call.Finish());
  EXPECT_TRUE(Eventually([&] { return service_.reactors_destroyed == service_.reactors_made; }));
  EXPECT_EQ(service_.reactors_made, 1);
}

TEST_P(CallSuite, ReactorBidiQueuesRepliesWhileTheClientIsNotReading) {
  // The client writes everything before it reads: 300 replies of 8 KiB
  // exceed its window, so the reactor's writes wait for WindowOpened.
  ClientContext ctx;
  ctx.set_deadline(absl::Now() + absl::Seconds(20));
  BlockingCall call(channel_, "/test.Svc/BidiOnLoop", &ctx);
  auto message = [](int i) { return absl::StrCat(i, ":", Pattern(8 * 1024, i)); };
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(call.Write(Bytes(message(i)))) << i;
  call.WritesDone();
  SliceChain m;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(call.Read(&m)) << i;
    ASSERT_TRUE(m.ToString() == "re:" + message(i)) << "reply " << i << " differs";
  }
  EXPECT_FALSE(call.Read(&m));
  VRPC_EXPECT_OK(call.Finish());
}

TEST_P(CallSuite, ReactorIsToldOfClientCancellationAndDestroyed) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/HangOnLoop", &ctx);
  ASSERT_TRUE(call.Write(Bytes("x")));
  ASSERT_TRUE(Eventually([&] { return service_.reactors_made == 1; }));
  ctx.TryCancel();
  EXPECT_EQ(call.Finish().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Eventually([&] { return service_.reactor_cancels == 1; }));
  EXPECT_TRUE(Eventually([&] { return service_.reactors_destroyed == 1; }));
  EXPECT_TRUE(Eventually([&] { return server_->stats().active_calls == 0; }));
}

TEST_P(CallSuite, ReactorIsToldOfTheDeadline) {
  ClientContext ctx;
  ctx.set_deadline(absl::Now() + absl::Milliseconds(200));
  BlockingCall call(channel_, "/test.Svc/HangOnLoop", &ctx);
  ASSERT_TRUE(call.Write(Bytes("x")));
  EXPECT_EQ(call.Finish().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Eventually([&] { return service_.reactor_cancels == 1; }));
  EXPECT_TRUE(Eventually([&] { return server_->stats().calls_cancelled == 1; }));
}

TEST_P(CallSuite, ShutdownCancelsAReactorCallThatNeverFinishes) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/HangOnLoop", &ctx);
  ASSERT_TRUE(call.Write(Bytes("x")));
  ASSERT_TRUE(Eventually([&] { return service_.reactors_made == 1; }));
  server_->Shutdown(absl::Now() + absl::Milliseconds(300));  // returns: the call is cancelled
  EXPECT_EQ(service_.reactor_cancels, 1);
  EXPECT_FALSE(call.Finish().ok());
  EXPECT_TRUE(Eventually([&] { return service_.reactors_destroyed == 1; }));
}

TEST_P(CallSuite, MessagesWrittenInTransportBuffersAreNotCopied) {
  if (!GetParam().zero_copy_tx) GTEST_SKIP() << "this transport copies what it sends";
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "warm-up", nullptr));  // connected
  transport::WriteBufferAllocator allocate = channel_->write_allocator();
  ASSERT_TRUE(allocate != nullptr);
  const std::string want = Pattern(64 * 1024, 64);
  uint8_t* data = nullptr;
  Slice payload = allocate(want.size(), &data);
  ASSERT_NE(data, nullptr);
  std::memcpy(data, want.data(), want.size());
  const uint64_t before = channel_->stats().transport.tx_bytes_copied;
  ClientContext ctx;
  SliceChain resp;
  VRPC_ASSERT_OK(BlockingUnaryCall(channel_, "/test.Svc/Echo", &ctx, SliceChain(payload), &resp));
  EXPECT_TRUE(resp.ToString() == want);
  // Only framing is copied: the HEADERS, MESSAGE and HALF_CLOSE frame
  // headers (12 B each) and the HEADERS payload, which the RPC layer builds
  // in small heap buffers.
  RequestHeaders h;
  h.method = "/test.Svc/Echo";
  const uint64_t framing = 3 * kFrameHeaderSize + EncodeRequestHeaders(h).size();
  EXPECT_LE(channel_->stats().transport.tx_bytes_copied - before, framing);
}

// ---------------------------------------------------------------------------
// Status, deadlines, cancellation, limits

TEST_P(CallSuite, StatusCodesAndMessagesPassThrough) {
  EXPECT_THAT(Unary("/test.Svc/Fail", "widget", nullptr),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such thing: widget")));
  EXPECT_THAT(Unary("/test.Svc/Nope", "", nullptr),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("/test.Svc/Nope")));
  VRPC_EXPECT_OK(Unary("/test.Svc/Echo", "ok", nullptr));
}

TEST_P(CallSuite, DeadlineExceededReachesTheHandler) {
  ClientContext ctx;
  ctx.set_timeout(absl::Milliseconds(200));
  BlockingCall call(channel_, "/test.Svc/Hang", &ctx);
  EXPECT_THAT(call.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(Eventually([&] { return service_.hang_cancelled.load() == 1; }));
}

TEST_P(CallSuite, ClientCancellationReachesTheHandler) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Hang", &ctx);
  ASSERT_TRUE(Eventually([&] { return service_.hang_started.load() == 1; }));
  ctx.TryCancel();
  EXPECT_THAT(call.Finish(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(Eventually([&] { return service_.hang_cancelled.load() == 1; }));
}

TEST_P(CallSuite, CancelledBeforeItStartsACallEndsCancelledAndTheNextRuns) {
  ClientContext ctx;
  ctx.TryCancel();  // before the call exists: it is cancelled as it starts
  BlockingCall call(channel_, "/test.Svc/Hang", &ctx);
  EXPECT_THAT(call.Finish(), StatusIs(absl::StatusCode::kCancelled));
  ctx.TryCancel();  // again: nothing left to cancel
  std::string resp;
  VRPC_EXPECT_OK(Unary("/test.Svc/Echo", "next", &resp));
  EXPECT_EQ(resp, "next");
}

TEST_P(CallSuite, ServerCancellationReachesTheClient) {
  ClientContext ctx;
  BlockingCall call(channel_, "/test.Svc/Abort", &ctx);
  ASSERT_TRUE(call.Write(Bytes("go")));
  call.WritesDone();
  SliceChain m;
  ASSERT_TRUE(call.Read(&m));
  EXPECT_EQ(m.ToString(), "first");
  EXPECT_FALSE(call.Read(&m));
  EXPECT_THAT(call.Finish(),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("the server gave up")));
  VRPC_EXPECT_OK(Unary("/test.Svc/Echo", "still fine", nullptr));
}

TEST_P(CallSuite, OversizedMessageFailsTheCallNotTheChannel) {
  std::string big(5 << 20, 'b');  // over the default 4 MiB
  EXPECT_THAT(Unary("/test.Svc/Echo", big, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted));
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "after", &resp));
  EXPECT_EQ(resp, "after");
  EXPECT_EQ(channel_->GetState(false), ConnectivityState::kReady);
}

// ---------------------------------------------------------------------------
// Concurrency

namespace {

// Starts |n| one-message calls of |method| at once, "call <i>" each, and
// counts those that ended OK with |reply_prefix| + "call <i>" (-1, and a
// test failure, if one does not end within a minute).
int ConcurrentCallsAnsweredRight(const std::shared_ptr<Channel>& channel,
                                 const std::string& method, const std::string& reply_prefix,
                                 int n) {
  std::vector<std::unique_ptr<OneMessageCall>> calls;
  for (int i = 0; i < n; ++i) {
    calls.push_back(std::make_unique<OneMessageCall>());
    calls.back()->Start(channel, method, "call " + std::to_string(i));
  }
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    if (!calls[i]->Wait()) {
      ADD_FAILURE() << "call " << i << " never ended";
      return -1;
    }
    if (calls[i]->status.ok() && calls[i]->got == reply_prefix + "call " + std::to_string(i)) ++ok;
  }
  return ok;
}

}  // namespace

TEST_P(CallSuite, ThousandConcurrentCalls) {
  constexpr int kCalls = 1000;
  EXPECT_EQ(ConcurrentCallsAnsweredRight(channel_, "/test.Svc/Echo", "", kCalls), kCalls);
  EXPECT_EQ(channel_->stats().calls_succeeded, static_cast<uint64_t>(kCalls));
}

TEST_P(CallSuite, TwoHundredConcurrentReactorCalls) {
  constexpr int kCalls = 200;
  EXPECT_EQ(ConcurrentCallsAnsweredRight(channel_, "/test.Svc/BidiOnLoop", "re:", kCalls), kCalls);
  EXPECT_TRUE(Eventually([&] { return service_.reactors_destroyed == kCalls; }));
  EXPECT_EQ(service_.reactors_made, kCalls);
}

TEST_P(CallSuite, ReactorCallsAreCancelledWhenTheConnectionGoes) {
  constexpr int kCalls = 50;
  std::vector<std::unique_ptr<OneMessageCall>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_unique<OneMessageCall>());
    calls.back()->Start(channel_, "/test.Svc/HangOnLoop", "x");
  }
  ASSERT_TRUE(Eventually([&] { return service_.reactors_made == kCalls; }));
  channel_->Shutdown();  // the client's calls end and the connection closes
  for (auto& call : calls) {
    ASSERT_TRUE(call->Wait());
    EXPECT_FALSE(call->status.ok());
  }
  EXPECT_TRUE(Eventually([&] { return service_.reactor_cancels == kCalls; }));
  EXPECT_TRUE(Eventually([&] { return service_.reactors_destroyed == kCalls; }));
  EXPECT_TRUE(Eventually([&] { return server_->stats().active_calls == 0; }));
}

TEST_P(CallSuite, CallsBeyondTheServersConcurrencyLimitWaitForASlot) {
  // The server takes 2 calls at a time; 20 started at once queue in the
  // channel and start as slots free up, each with its own method.
  server_->Shutdown(absl::Now() + absl::Seconds(1));
  server_options_.session.local.max_concurrent_streams = 2;
  server_ = std::make_unique<Server>(server_options_);
  ASSERT_THAT(server_->RegisterService(&service_), IsOk());
  ListenOn(kPort);
  // The calls start while the channel reconnects: none may go out before
  // the new server's SETTINGS (its limit) is in, or the server refuses them.
  constexpr int kCalls = 20;
  std::vector<std::unique_ptr<OneMessageCall>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_unique<OneMessageCall>());
    calls.back()->context.set_wait_for_ready(true);
    calls.back()->context.set_timeout(absl::Seconds(30));
    // Alternate two methods: a waiting call must keep its own.
    calls.back()->Start(channel_, i % 2 == 0 ? "/test.Svc/Echo" : "/test.Svc/Unknown",
                        "call " + std::to_string(i));
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(calls[i]->Wait());
    if (i % 2 == 0) {
      VRPC_EXPECT_OK(calls[i]->status) << i;
      EXPECT_EQ(calls[i]->got, "call " + std::to_string(i));
    } else {
      EXPECT_EQ(calls[i]->status.code(), absl::StatusCode::kUnimplemented) << i;
    }
  }
}

TEST_P(CallSuite, HandlerThatNeverReadsDoesNotBlockOtherCalls) {
  // A client streams far more than one call's window to a handler that
  // never reads; the connection keeps serving other calls.
  ClientContext stuck_ctx;
  auto stuck = std::make_unique<BlockingCall>(channel_, "/test.Svc/Hang", &stuck_ctx);
  std::thread writer([&] {
    for (int i = 0; i < 64; ++i) {
      if (!stuck->Write(Bytes(std::string(256 * 1024, 'w')))) break;  // blocks on the window
    }
  });
  ASSERT_TRUE(Eventually([&] { return service_.hang_started.load() == 1; }));
  for (int i = 0; i < 20; ++i) {
    std::string resp;
    VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "through " + std::to_string(i), &resp));
    EXPECT_EQ(resp, "through " + std::to_string(i));
  }
  stuck_ctx.TryCancel();
  writer.join();
  EXPECT_THAT(stuck->Finish(), StatusIs(absl::StatusCode::kCancelled));
}

// ---------------------------------------------------------------------------
// Channel states

TEST_P(CallSuite, ChannelStatesConnectingToNothingThenReconnect) {
  ChannelOptions options;
  options.backoff.initial = absl::Milliseconds(50);
  options.backoff.max = absl::Milliseconds(200);
  auto channel = MakeChannel(options, /*port=*/6000);  // nothing listens yet
  extra_channels_.push_back(channel);
  auto log = std::make_shared<StateLog>();
  log->Attach(*channel, log);
  EXPECT_EQ(channel->GetState(true), ConnectivityState::kIdle);
  ASSERT_TRUE(channel->WaitForStateChange(ConnectivityState::kIdle, absl::Now() + absl::Seconds(5)));
  EXPECT_TRUE(Eventually(
      [&] { return channel->GetState(false) == ConnectivityState::kTransientFailure; }));
  EXPECT_THAT(channel->state_info().last_error, StatusIs(absl::StatusCode::kUnavailable));
  // Fail fast in TRANSIENT_FAILURE...
  ClientContext ctx;
  SliceChain out;
  EXPECT_THAT(BlockingUnaryCall(channel, "/test.Svc/Echo", &ctx, Bytes("x"), &out),
              StatusIs(absl::StatusCode::kUnavailable));
  // ...unless the call waits for ready: start serving port 6000 and it lands.
  ClientContext wait_ctx;
  wait_ctx.set_wait_for_ready(true);
  wait_ctx.set_timeout(absl::Seconds(20));
  std::future<absl::Status> waited = std::async(std::launch::async, [&] {
    SliceChain r;
    return BlockingUnaryCall(channel, "/test.Svc/Echo", &wait_ctx, Bytes("late"), &r);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ListenOn(6000);
  VRPC_EXPECT_OK(waited.get());
  EXPECT_EQ(channel->GetState(false), ConnectivityState::kReady);
  std::lock_guard<std::mutex> lock(log->mu);
  ASSERT_GE(log->states.size(), 4u);
  EXPECT_EQ(log->states[0], ConnectivityState::kConnecting);
  EXPECT_EQ(log->states[1], ConnectivityState::kTransientFailure);
  EXPECT_EQ(log->states.back(), ConnectivityState::kReady);
}

TEST_P(CallSuite, PeerGoneThenBackAgain) {
  ChannelOptions options;
  options.backoff.initial = absl::Milliseconds(50);
  options.backoff.max = absl::Milliseconds(200);
  channel_->Shutdown();
  channel_ = MakeChannel(options);
  auto log = std::make_shared<StateLog>();
  log->Attach(*channel_, log);
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "before", nullptr));
  // The server goes away (for the userspace transports its listener may own
  // the device: the whole device goes with it).
  server_->Shutdown(absl::Now() + absl::Seconds(1));
  EXPECT_TRUE(Eventually([&] { return channel_->GetState(false) != ConnectivityState::kReady; }));
  ClientContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  SliceChain out;
  EXPECT_FALSE(BlockingUnaryCall(channel_, "/test.Svc/Echo", &ctx, Bytes("gone"), &out).ok());
  // A new server on the same address: the channel finds it.
  server_ = std::make_unique<Server>(server_options_);
  ASSERT_THAT(server_->RegisterService(&service_), IsOk());
  ListenOn(kPort);
  ClientContext wait_ctx;
  wait_ctx.set_wait_for_ready(true);
  wait_ctx.set_timeout(absl::Seconds(30));
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", "after", &resp, &wait_ctx));
  EXPECT_EQ(resp, "after");
  EXPECT_GE(channel_->stats().connects, 2u);
  // In order: READY, then out of READY when the peer went (IDLE after its
  // GOAWAY, or TRANSIENT_FAILURE), then READY again.
  std::lock_guard<std::mutex> lock(log->mu);
  const std::vector<ConnectivityState>& seen = log->states;
  auto first_ready = std::find(seen.begin(), seen.end(), ConnectivityState::kReady);
  ASSERT_NE(first_ready, seen.end());
  auto left = std::find_if(first_ready, seen.end(),
                           [](ConnectivityState s) { return s != ConnectivityState::kReady; });
  ASSERT_NE(left, seen.end()) << "the channel never left READY";
  EXPECT_TRUE(*left == ConnectivityState::kIdle || *left == ConnectivityState::kTransientFailure);
  EXPECT_EQ(seen.back(), ConnectivityState::kReady);
}

TEST_P(CallSuite, CreditBlockedIsObservedAndRecovers) {
  if (!GetParam().credit_observable) GTEST_SKIP() << "this transport cannot see the peer's window";
  auto log = std::make_shared<StateLog>();
  log->Attach(*channel_, log);
  // 3 MiB through a 256 KiB vsock window.
  const std::string big = Pattern(3 << 20, 7);
  std::string resp;
  VRPC_ASSERT_OK(Unary("/test.Svc/Echo", big, &resp));
  EXPECT_TRUE(resp == big);
  std::lock_guard<std::mutex> lock(log->mu);
  EXPECT_THAT(log->blocked, ::testing::Contains(true));
  ASSERT_FALSE(log->blocked.empty());
  EXPECT_FALSE(log->blocked.back());
  EXPECT_FALSE(channel_->state_info().credit_blocked);
}

TEST_P(CallSuite, GracefulShutdownDrainsRunningCalls) {
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

}  // namespace rpc_testing
}  // namespace vrpc
