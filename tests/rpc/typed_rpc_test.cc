// Generated code (protoc-gen-vrpc) end to end over the loopback transport:
// the Echo service's four call kinds through Echo::Stub, the async unary
// call, default UNIMPLEMENTED methods, and grpc.health.v1.
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/channel.h"
#include "core/rpc/health/health_service.h"
#include "core/rpc/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/echo/echo.pb.h"
#include "proto/echo/echo.vrpc.pb.h"
#include "proto/health/health.pb.h"
#include "proto/health/health.vrpc.pb.h"
#include "transport_vsock/loopback/loopback_transport.h"

namespace vrpc {
namespace rpc {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::vrpc::echo::Echo;
using ::vrpc::echo::EchoReply;
using ::vrpc::echo::EchoRequest;

// Implements three of the four methods: Bidi stays UNIMPLEMENTED.
class PartialEcho final : public Echo::Service {
 public:
  absl::Status Unary(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    if (request->payload() == "fail") return absl::PermissionDeniedError("told to fail");
    reply->set_payload(request->payload());
    reply->set_sequence(1);
    return absl::OkStatus();
  }
  absl::Status ServerStream(ServerContext* context, const EchoRequest* request,
                            ServerWriter<EchoReply>* writer) override {
    for (uint32_t i = 0; i < request->count(); ++i) {
      EchoReply reply;
      reply.set_payload(request->payload());
      reply.set_sequence(i);
      if (!writer->Write(reply)) return absl::CancelledError();
    }
    return absl::OkStatus();
  }
  absl::Status ClientStream(ServerContext* context, ServerReader<EchoRequest>* reader,
                            EchoReply* reply) override {
    EchoRequest request;
    std::string all;
    uint64_t n = 0;
    while (reader->Read(&request)) {
      all += request.payload();
      ++n;
    }
    reply->set_payload(all);
    reply->set_sequence(n);
    return absl::OkStatus();
  }
};

class FullEcho final : public Echo::Service {
 public:
  absl::Status Bidi(ServerContext* context,
                    ServerReaderWriter<EchoReply, EchoRequest>* stream) override {
    EchoRequest request;
    uint64_t n = 0;
    while (stream->Read(&request)) {
      EchoReply reply;
      reply.set_payload(request.payload());
      reply.set_sequence(n++);
      if (!stream->Write(reply)) break;
    }
    return absl::OkStatus();
  }
};

class TypedRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VRPC_ASSERT_OK_AND_ASSIGN(loop_, io::EventLoopThread::Start("typed-rpc"));
    server_ = std::make_unique<Server>();
    VRPC_ASSERT_OK(server_->RegisterService(&echo_));
    VRPC_ASSERT_OK(server_->RegisterService(&health_));
    loop_->RunSync([&] {
      link_ = *vsock::LoopbackTransport::Create(loop_->reactor());
      server_->AddListener(*link_->host().Listen(7000));
      bidi_server_ = std::make_unique<Server>();
      ASSERT_THAT(bidi_server_->RegisterService(&full_), IsOk());
      bidi_server_->AddListener(*link_->host().Listen(7001));
      channel_ = Channel::Create(link_->guest().ConnectorTo(7000));
      bidi_channel_ = Channel::Create(link_->guest().ConnectorTo(7001));
    });
  }
  void TearDown() override {
    channel_->Shutdown();
    bidi_channel_->Shutdown();
    health_.Shutdown();
    server_->Shutdown(absl::Now() + absl::Seconds(1));
    bidi_server_->Shutdown(absl::Now() + absl::Seconds(1));
    server_.reset();
    bidi_server_.reset();
    channel_.reset();
    bidi_channel_.reset();
    loop_->RunSync([&] { link_.reset(); });
    loop_.reset();
  }

  PartialEcho echo_;
  FullEcho full_;
  HealthService health_;
  std::unique_ptr<io::EventLoopThread> loop_;
  std::unique_ptr<vsock::LoopbackTransport> link_;
  std::unique_ptr<Server> server_, bidi_server_;
  std::shared_ptr<Channel> channel_, bidi_channel_;
};

TEST_F(TypedRpcTest, UnaryAndAsyncUnary) {
  Echo::Stub stub(channel_);
  ClientContext ctx;
  EchoRequest req;
  req.set_payload("hi");
  EchoReply reply;
  VRPC_ASSERT_OK(stub.Unary(&ctx, req, &reply));
  EXPECT_EQ(reply.payload(), "hi");
  EXPECT_EQ(reply.sequence(), 1u);

  ClientContext fail_ctx;
  req.set_payload("fail");
  EXPECT_THAT(stub.Unary(&fail_ctx, req, &reply),
              StatusIs(absl::StatusCode::kPermissionDenied, "told to fail"));

  ClientContext async_ctx;
  req.set_payload("async");
  EchoReply async_reply;
  std::promise<absl::Status> done;
  stub.AsyncUnary(&async_ctx, req, &async_reply, [&](absl::Status s) { done.set_value(s); });
  VRPC_EXPECT_OK(done.get_future().get());
  EXPECT_EQ(async_reply.payload(), "async");
}

TEST_F(TypedRpcTest, ServerStreaming) {
  Echo::Stub stub(channel_);
  ClientContext ctx;
  EchoRequest req;
  req.set_payload("x");
  req.set_count(10);
  auto reader = stub.ServerStream(&ctx, req);
  EchoReply reply;
  uint64_t n = 0;
  while (reader->Read(&reply)) EXPECT_EQ(reply.sequence(), n++);
  EXPECT_EQ(n, 10u);
  VRPC_EXPECT_OK(reader->Finish());
}

TEST_F(TypedRpcTest, ClientStreaming) {
  Echo::Stub stub(channel_);
  ClientContext ctx;
  EchoReply reply;
  auto writer = stub.ClientStream(&ctx, &reply);
  for (const char* part : {"a", "b", "c"}) {
    EchoRequest req;
    req.set_payload(part);
    ASSERT_TRUE(writer->Write(req));
  }
  writer->WritesDone();
  VRPC_ASSERT_OK(writer->Finish());
  EXPECT_EQ(reply.payload(), "abc");
  EXPECT_EQ(reply.sequence(), 3u);
}

TEST_F(TypedRpcTest, BidiAndUnimplementedDefaults) {
  Echo::Stub stub(bidi_channel_);
  ClientContext ctx;
  auto stream = stub.Bidi(&ctx);
  for (int i = 0; i < 5; ++i) {
    EchoRequest req;
    req.set_payload(std::to_string(i));
    ASSERT_TRUE(stream->Write(req));
    EchoReply reply;
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.payload(), std::to_string(i));
  }
  stream->WritesDone();
  VRPC_EXPECT_OK(stream->Finish());

  // The partial service does not override Bidi: UNIMPLEMENTED.
  Echo::Stub partial(channel_);
  ClientContext ctx2;
  auto unimplemented = partial.Bidi(&ctx2);
  unimplemented->WritesDone();
  EXPECT_THAT(unimplemented->Finish(), StatusIs(absl::StatusCode::kUnimplemented));
}

TEST_F(TypedRpcTest, HealthCheckAndWatch) {
  Health::Stub health(channel_);
  HealthCheckRequest req;
  HealthCheckResponse resp;
  {
    ClientContext ctx;
    VRPC_ASSERT_OK(health.Check(&ctx, req, &resp));
    EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  }
  {
    ClientContext ctx;
    req.set_service("vrpc.echo.Echo");
    EXPECT_THAT(health.Check(&ctx, req, &resp), StatusIs(absl::StatusCode::kNotFound));
  }
  health_.SetServingStatus("vrpc.echo.Echo", HealthCheckResponse::SERVING);
  ClientContext watch_ctx;
  auto watch = health.Watch(&watch_ctx, req);
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  health_.SetServingStatus("vrpc.echo.Echo", HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  watch_ctx.TryCancel();
  EXPECT_THAT(watch->Finish(), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(TypedRpcTest, HealthCheckIsAnsweredWhileEveryWorkerIsBusy) {
  // One worker thread, taken by a Watch that never ends on its own: Check
  // runs inline on the server's loop, so it still answers.
  HealthService health;
  ServerOptions options;
  options.max_worker_threads = 1;
  Server busy(options);
  VRPC_ASSERT_OK(busy.RegisterService(&health));
  std::shared_ptr<Channel> channel;
  loop_->RunSync([&] {
    busy.AddListener(*link_->host().Listen(7002));
    channel = Channel::Create(link_->guest().ConnectorTo(7002));
  });
  Health::Stub stub(channel);
  HealthCheckRequest req;
  HealthCheckResponse resp;
  ClientContext watch_ctx;
  auto watch = stub.Watch(&watch_ctx, req);
  ASSERT_TRUE(watch->Read(&resp));  // the worker is in Watch now
  ClientContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  VRPC_ASSERT_OK(stub.Check(&ctx, req, &resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  watch_ctx.TryCancel();
  EXPECT_THAT(watch->Finish(), StatusIs(absl::StatusCode::kCancelled));
  channel->Shutdown();
  health.Shutdown();
  busy.Shutdown(absl::Now() + absl::Seconds(1));
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
