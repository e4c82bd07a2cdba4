// Proves the offline toolchain: generated protobuf + gRPC code, Abseil,
// liburing and GoogleTest/GoogleMock all build, link and run.

#include <cerrno>
#include <memory>
#include <string>

#include <liburing.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/toolchain/common/types.pb.h"
#include "tests/toolchain/echo.grpc.pb.h"
#include "tests/toolchain/echo.pb.h"

namespace vrpc::toolchain_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

absl::StatusOr<EchoRequest> ParseRequest(const std::string& wire) {
  EchoRequest request;
  if (!request.ParseFromString(wire)) {
    return absl::InvalidArgumentError("not an EchoRequest");
  }
  return request;
}

TEST(ToolchainTest, ProtobufRoundTrip) {
  EchoRequest request;
  request.mutable_header()->set_request_id("req-1");
  request.mutable_header()->set_sequence(42);
  request.set_text("hello");
  request.add_numbers(1);
  request.add_numbers(2);
  request.add_numbers(3);
  request.mutable_sent_at()->set_seconds(1700000000);

  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  EXPECT_THAT(wire, Not(IsEmpty()));

  absl::StatusOr<EchoRequest> parsed = ParseRequest(wire);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->header().request_id(), "req-1");
  EXPECT_EQ(parsed->header().sequence(), 42u);
  EXPECT_EQ(parsed->text(), "hello");
  EXPECT_THAT(parsed->numbers(), ElementsAre(1, 2, 3));
  EXPECT_EQ(parsed->sent_at().seconds(), 1700000000);
  EXPECT_THAT(parsed->DebugString(), HasSubstr("req-1"));
}

TEST(ToolchainTest, StatusOrCarriesErrors) {
  absl::StatusOr<EchoRequest> bad = ParseRequest("\xff\xff\xff");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("EchoRequest"));
}

class EchoService final : public Echo::Service {
 public:
  grpc::Status Say(grpc::ServerContext* /*context*/, const EchoRequest* request,
                   EchoReply* reply) override {
    *reply->mutable_header() = request->header();
    reply->set_text(absl::StrCat("echo: ", request->text()));
    return grpc::Status::OK;
  }
};

// Calls the generated stub through an in-process channel: no sockets, no
// network.
TEST(ToolchainTest, GrpcStubInProcess) {
  EchoService service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  std::unique_ptr<Echo::Stub> stub =
      Echo::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  ASSERT_NE(stub, nullptr);

  EchoRequest request;
  request.mutable_header()->set_request_id("rpc-7");
  request.set_text("ping");
  EchoReply reply;
  grpc::ClientContext context;
  grpc::Status status = stub->Say(&context, request, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.text(), "echo: ping");
  EXPECT_EQ(reply.header().request_id(), "rpc-7");

  server->Shutdown();
  server->Wait();
}

TEST(ToolchainTest, IoUringQueueInitAndExit) {
  struct io_uring ring;
  int rc = io_uring_queue_init(8, &ring, 0);
  if (rc == -ENOSYS || rc == -EPERM) {
    GTEST_SKIP() << "io_uring is not available here: " << rc;
  }
  ASSERT_EQ(rc, 0) << "io_uring_queue_init failed: " << rc;
  EXPECT_GE(ring.sq.ring_entries, 8u);
  io_uring_queue_exit(&ring);
}

}  // namespace
}  // namespace vrpc::toolchain_test
