// The typed callback API (core/rpc/reactors.h) end to end over the loopback
// transport, through generated code: ServerReadReactor and ServerBidiReactor
// on the server's loop, ClientWriteReactor on the client's.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/blocking_call.h"
#include "core/rpc/channel.h"
#include "core/rpc/reactors.h"
#include "core/rpc/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/echo/echo.pb.h"
#include "proto/echo/echo.vrpc.pb.h"
#include "transport_vsock/loopback/loopback_transport.h"

namespace vrpc {
namespace rpc {
namespace {

using ::testing::HasSubstr;
using ::vrpc::echo::Echo;
using ::vrpc::echo::EchoReply;
using ::vrpc::echo::EchoRequest;

// ClientStream: concatenates payloads; a payload "stop" ends the call with
// FAILED_PRECONDITION from OnRead.
class Concat final : public ServerReadReactor<EchoRequest, EchoReply> {
 public:
  absl::Status OnRead(const EchoRequest& request) override {
    if (request.payload() == "stop") return absl::FailedPreconditionError("told to stop");
    all_ += request.payload();
    ++n_;
    return absl::OkStatus();
  }
  absl::Status OnReadsDone(EchoReply* reply) override {
    reply->set_payload(all_);
    reply->set_sequence(n_);
    return absl::OkStatus();
  }

 private:
  std::string all_;
  uint64_t n_ = 0;
};

// Bidi: one reply per request, in order; ServerStream: |count| replies,
// made one at a time as the writes go. One write at a time.
class Replier final : public ServerBidiReactor<EchoRequest, EchoReply> {
 public:
  void OnRead(const EchoRequest& request) override {
    const bool server_streaming = context().method() == "/vrpc.echo.Echo/ServerStream";
    pending_.emplace_back(request.payload(), server_streaming ? request.count() : 1);
    if (!writing_) WriteNext();
  }
  void OnReadsDone() override {
    reads_done_ = true;
    if (!writing_) WriteNext();
  }
  void OnWriteDone(bool ok) override {
    writing_ = false;
    if (!ok) return Finish(absl::InternalError("a write failed"));
    WriteNext();
  }

 private:
  void WriteNext() {
    while (!pending_.empty() && pending_.front().second == 0) pending_.pop_front();
    if (pending_.empty()) {
      if (reads_done_) Finish(absl::OkStatus());
      return;
    }
    EchoReply reply;
    reply.set_payload(pending_.front().first);
    reply.set_sequence(next_++);
    --pending_.front().second;
    writing_ = true;
    StartWrite(reply);
  }
  std::deque<std::pair<std::string, uint32_t>> pending_;  // payload, replies left
  uint64_t next_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
};

class ReactorEcho final : public Echo::Service {
 public:
  ReactorEcho() {
    auto concat = [](ServerContext*) { return std::make_unique<Concat>(); };
    auto replier = [](ServerContext*) { return std::make_unique<Replier>(); };
    if (!ServeOnReactor("ClientStream", ReadReactorFactory<EchoRequest, EchoReply>(concat)).ok() ||
        !ServeOnReactor("Bidi", BidiReactorFactory<EchoRequest, EchoReply>(replier)).ok() ||
        !ServeOnReactor("ServerStream", BidiReactorFactory<EchoRequest, EchoReply>(replier)).ok()) {
      std::abort();
    }
  }
};

// Writes |total| requests, each started from the previous OnWriteDone, and
// records how deeply OnWriteDone nested.
class Uploader final : public ClientWriteReactor<EchoRequest, EchoReply> {
 public:
  Uploader(int total, std::string payload) : total_(total), payload_(std::move(payload)) {}
  void Begin() { WriteOrFinish(); }
  void OnWriteDone(bool ok) override {
    ++depth_;
    max_depth_ = std::max(max_depth_, depth_);
    if (!ok) ++failed_writes_;
    WriteOrFinish();
    --depth_;
  }
  void OnDone(const absl::Status& status) override { done_.set_value(status); }

  std::promise<absl::Status> done_;
  int max_depth_ = 0;
  int failed_writes_ = 0;
  int written_ = 0;

 private:
  void WriteOrFinish() {
    if (written_ == total_) return StartWritesDone();
    EchoRequest request;
    request.set_payload(payload_);
    ++written_;
    StartWrite(request);
  }
  const int total_;
  const std::string payload_;
  int depth_ = 0;
};

// Reads a server stream; cancels after |cancel_after| responses (0: never).
class StreamReader final : public ClientReadReactor<EchoReply> {
 public:
  explicit StreamReader(int cancel_after = 0) : cancel_after_(cancel_after) {}
  void OnRead(const EchoReply& reply) override {
    if (reply.sequence() != static_cast<uint64_t>(reads_)) out_of_order_ = true;
    bytes_ += reply.payload().size();
    if (++reads_ == cancel_after_) TryCancel();
  }
  void OnDone(const absl::Status& status) override { done_.set_value(status); }

  std::promise<absl::Status> done_;
  int reads_ = 0;
  size_t bytes_ = 0;
  bool out_of_order_ = false;

 private:
  const int cancel_after_;
};

// Bidi ping-pong: each reply starts the next request, |rounds| in all.
class PingPong final : public ClientBidiReactor<EchoRequest, EchoReply> {
 public:
  explicit PingPong(int rounds) : rounds_(rounds) {}
  void Begin() { Send(); }
  void OnRead(const EchoReply& reply) override {
    if (reply.payload() != "ping" + std::to_string(replies_)) wrong_ = true;
    if (++replies_ == rounds_) return StartWritesDone();
    Send();
  }
  void OnWriteDone(bool ok) override { failed_writes_ += ok ? 0 : 1; }
  void OnDone(const absl::Status& status) override { done_.set_value(status); }

  std::promise<absl::Status> done_;
  int replies_ = 0;
  int failed_writes_ = 0;
  bool wrong_ = false;

 private:
  void Send() {
    EchoRequest request;
    request.set_payload("ping" + std::to_string(sent_++));
    StartWrite(request);
  }
  const int rounds_;
  int sent_ = 0;
};

class ReactorRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VRPC_ASSERT_OK_AND_ASSIGN(loop_, io::EventLoopThread::Start("reactor-rpc"));
    server_ = std::make_unique<Server>();
    VRPC_ASSERT_OK(server_->RegisterService(&echo_));
    loop_->RunSync([&] {
      link_ = *vsock::LoopbackTransport::Create(loop_->reactor());
      server_->AddListener(*link_->host().Listen(7000));
      channel_ = Channel::Create(link_->guest().ConnectorTo(7000));
    });
    stub_ = std::make_unique<Echo::Stub>(channel_);
  }
  void TearDown() override {
    channel_->Shutdown();
    server_->Shutdown(absl::Now() + absl::Seconds(1));
    server_.reset();
    stub_.reset();
    channel_.reset();
    loop_->RunSync([&] { link_.reset(); });
    loop_.reset();
  }

  ReactorEcho echo_;
  std::unique_ptr<io::EventLoopThread> loop_;
  std::unique_ptr<vsock::LoopbackTransport> link_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Channel> channel_;
  std::unique_ptr<Echo::Stub> stub_;
};

TEST_F(ReactorRpcTest, ClientWriteReactorToServerReadReactor) {
  // 2000 small writes, each started from the last one's OnWriteDone on the
  // client's loop: the reports must not nest (the stack would grow with
  // every write the session takes at once).
  ClientContext context;
  EchoReply reply;
  Uploader uploader(2000, "ab");
  stub_->ClientStream(&context, &reply, &uploader);
  loop_->reactor().Post([&] { uploader.Begin(); });
  std::future<absl::Status> done = uploader.done_.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  VRPC_EXPECT_OK(done.get());
  EXPECT_EQ(reply.sequence(), 2000u);
  EXPECT_EQ(reply.payload().size(), 4000u);
  EXPECT_EQ(uploader.max_depth_, 1);
  EXPECT_EQ(uploader.failed_writes_, 0);
}

TEST_F(ReactorRpcTest, ClientWriteReactorFromAnotherThread) {
  // Started from the test thread: the first write is posted to the loop,
  // the rest chain from OnWriteDone. Large messages: 3 MiB in all.
  ClientContext context;
  EchoReply reply;
  Uploader uploader(12, std::string(256 * 1024, 'z'));
  stub_->ClientStream(&context, &reply, &uploader);
  uploader.Begin();
  std::future<absl::Status> done = uploader.done_.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  VRPC_EXPECT_OK(done.get());
  EXPECT_EQ(reply.sequence(), 12u);
  EXPECT_EQ(reply.payload().size(), 12u * 256 * 1024);
}

TEST_F(ReactorRpcTest, OnReadErrorEndsTheCallWithIt) {
  ClientContext context;
  EchoReply reply;
  auto writer = stub_->ClientStream(&context, &reply);
  EchoRequest request;
  request.set_payload("stop");
  (void)writer->Write(request);  // false if the call already ended
  writer->WritesDone();
  const absl::Status s = writer->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("told to stop"));
}

TEST_F(ReactorRpcTest, OnReadErrorWhileTheClientKeepsWriting) {
  // The reactor ends the call on the first message; the client's later
  // writes fail or are dropped, and nothing hangs.
  ClientContext context;
  context.set_deadline(absl::Now() + absl::Seconds(20));
  EchoReply reply;
  auto writer = stub_->ClientStream(&context, &reply);
  EchoRequest request;
  request.set_payload("stop");
  // Write says false if the call already ended when it looks: either is fine.
  (void)writer->Write(request);
  request.set_payload(std::string(64 * 1024, 'w'));
  for (int i = 0; i < 100; ++i) {
    if (!writer->Write(request)) break;
  }
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReactorRpcTest, UnparsableRequestFailsTheCallWithInternal) {
  ClientContext context;
  BlockingCall call(channel_, "/vrpc.echo.Echo/ClientStream", &context);
  // False if the server's answer is in before Write looks: either is fine.
  (void)call.Write(SliceChain(Slice::Copy(std::string("\xff\xff\xff", 3))));
  call.WritesDone();
  const absl::Status s = call.Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("parse"));
}

TEST_F(ReactorRpcTest, ServerBidiReactorRepliesInOrder) {
  ClientContext context;
  auto stream = stub_->Bidi(&context);
  EchoRequest request;
  EchoReply reply;
  for (int i = 0; i < 50; ++i) {
    request.set_payload("m" + std::to_string(i));
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.payload(), "m" + std::to_string(i));
    EXPECT_EQ(reply.sequence(), static_cast<uint64_t>(i));
  }
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&reply));
  VRPC_EXPECT_OK(stream->Finish());
}

TEST_F(ReactorRpcTest, ServerBidiReactorServesServerStreaming) {
  // 64 replies of 64 KiB: four times the client's window, so most of the
  // reactor's writes wait for the window and report later.
  ClientContext context;
  EchoRequest request;
  request.set_payload(std::string(64 * 1024, 'q'));
  request.set_count(64);
  auto reader = stub_->ServerStream(&context, request);
  EchoReply reply;
  uint64_t n = 0;
  while (reader->Read(&reply)) {
    EXPECT_EQ(reply.sequence(), n++);
    EXPECT_EQ(reply.payload().size(), 64u * 1024);
  }
  EXPECT_EQ(n, 64u);
  VRPC_EXPECT_OK(reader->Finish());
}

TEST_F(ReactorRpcTest, ClientWriteReactorCancelled) {
  ClientContext context;
  EchoReply reply;
  Uploader uploader(0, "");  // writes nothing, never half-closes
  // Never begun: the call stays open until it is cancelled.
  stub_->ClientStream(&context, &reply, &uploader);
  uploader.TryCancel();
  std::future<absl::Status> done = uploader.done_.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(done.get().code(), absl::StatusCode::kCancelled);
}

TEST_F(ReactorRpcTest, ClientReadReactorReadsAServerStreamBeyondItsWindow) {
  // 64 x 64 KiB is four windows: the stream flows only if each OnRead
  // returns window to the server.
  ClientContext context;
  context.set_deadline(absl::Now() + absl::Seconds(20));
  EchoRequest request;
  request.set_payload(std::string(64 * 1024, 'r'));
  request.set_count(64);
  StreamReader reader;
  stub_->ServerStream(&context, request, &reader);
  std::future<absl::Status> done = reader.done_.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  VRPC_EXPECT_OK(done.get());
  EXPECT_EQ(reader.reads_, 64);
  EXPECT_EQ(reader.bytes_, 64u * 64 * 1024);
  EXPECT_FALSE(reader.out_of_order_);
}

TEST_F(ReactorRpcTest, ClientReadReactorCancelsMidStream) {
  ClientContext context;
  EchoRequest request;
  request.set_payload(std::string(64 * 1024, 'c'));
  request.set_count(100000);  // 6 GiB if nobody stopped it
  StreamReader reader(/*cancel_after=*/3);
  stub_->ServerStream(&context, request, &reader);
  std::future<absl::Status> done = reader.done_.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(done.get().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(reader.reads_, 3);
}

TEST_F(ReactorRpcTest, ClientBidiReactorPingPongFromItsCallbacks) {
  ClientContext context;
  context.set_deadline(absl::Now() + absl::Seconds(20));
  PingPong game(200);
  stub_->Bidi(&context, &game);
  loop_->reactor().Post([&] { game.Begin(); });
  std::future<absl::Status> done = game.done_.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  VRPC_EXPECT_OK(done.get());
  EXPECT_EQ(game.replies_, 200);
  EXPECT_FALSE(game.wrong_);
  EXPECT_EQ(game.failed_writes_, 0);
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
