// RpcConnection over a scripted transport whose credit the test hands out:
// output beyond the credit waits in order, and the session hears when it is
// backlogged and when it drained.
#include "core/rpc/rpc_connection.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/manual_reactor.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace rpc {
namespace {

// Takes at most |credit| bytes in all; the test adds credit and announces it
// with kWritable, as vsock does when the peer's window reopens.
class MeteredConnection final : public transport::Connection {
 public:
  explicit MeteredConnection(io::Reactor& reactor) : reactor_(reactor) {}

  io::Reactor& reactor() override { return reactor_; }
  void SetEventHandler(EventHandler handler) override { handler_ = std::move(handler); }
  transport::ConnectionState state() const override { return transport::ConnectionState::kOpen; }
  absl::Status status() const override { return absl::OkStatus(); }
  absl::StatusOr<SliceChain> Read(size_t) override { return SliceChain(); }
  bool AtEof() const override { return false; }
  absl::StatusOr<size_t> Write(SliceChain& data) override {
    const size_t n = std::min(credit_, data.size());
    written_ += n;
    credit_ -= n;
    data.RemovePrefix(n);
    return n;
  }
  absl::Status ShutdownWrite() override { return absl::OkStatus(); }
  void Close() override {}
  transport::CreditInfo credit() const override { return {}; }
  transport::ConnectionStats stats() const override { return {}; }
  std::string peer_address() const override { return "test"; }

  void AddCredit(size_t bytes) {
    credit_ += bytes;
    if (handler_) handler_({transport::ConnectionEventType::kWritable, absl::OkStatus()});
  }
  size_t written() const { return written_; }

 private:
  io::Reactor& reactor_;
  EventHandler handler_;
  size_t credit_ = 0;
  size_t written_ = 0;
};

class RpcConnectionTest : public ::testing::Test {
 protected:
  RpcConnectionTest() {
    auto transport = std::make_unique<MeteredConnection>(reactor_);
    transport_ = transport.get();
    SessionOptions options;
    options.max_unsent_bytes = 100 * 1000;
    RpcConnection::Callbacks callbacks;
    callbacks.on_event = [this](SessionEvent& e) {
      if (e.type == SessionEventType::kWritable) writable_.push_back(e.stream);
    };
    conn_ = std::make_unique<RpcConnection>(std::move(transport), Session::Role::kClient, options,
                                            std::move(callbacks));
    reactor_.RunUntilIdle();
  }

  uint32_t StartCall() {
    RequestHeaders headers;
    headers.method = "/test.Svc/Call";
    absl::StatusOr<uint32_t> stream = conn_->session().StartCall(headers, conn_->out());
    EXPECT_THAT(stream, IsOk());
    return stream.ok() ? *stream : 0;
  }
  void Send(uint32_t stream, size_t bytes) {
    VRPC_EXPECT_OK(conn_->session().SendMessage(
        stream, SliceChain(Slice::Copy(std::string(bytes, 'm'))), conn_->out()));
    conn_->Flush();
    reactor_.RunUntilIdle();
  }

  io::ManualReactor reactor_;
  MeteredConnection* transport_ = nullptr;
  std::unique_ptr<RpcConnection> conn_;
  std::vector<uint32_t> writable_;
};

TEST_F(RpcConnectionTest, UnsentOutputOverTheLimitHoldsMessagesUntilAQuarterRemains) {
  const uint32_t stream = StartCall();
  Send(stream, 60 * 1000);
  EXPECT_TRUE(conn_->session().CanSend(stream));  // 60 KB waiting: under the limit
  Send(stream, 60 * 1000);
  EXPECT_GE(conn_->pending_bytes(), 100u * 1000);
  EXPECT_FALSE(conn_->session().CanSend(stream));  // backlogged
  conn_->session().WantSend(stream);

  transport_->AddCredit(60 * 1000);  // 60 KB and change still wait: over a quarter
  reactor_.RunUntilIdle();
  EXPECT_FALSE(conn_->session().CanSend(stream));
  EXPECT_TRUE(writable_.empty());

  transport_->AddCredit(40 * 1000);  // under 25 KB wait now
  reactor_.RunUntilIdle();
  EXPECT_LE(conn_->pending_bytes(), 25u * 1000);
  EXPECT_TRUE(conn_->session().CanSend(stream));
  EXPECT_EQ(writable_, std::vector<uint32_t>{stream});

  // Everything arrives, in order, once credit allows.
  transport_->AddCredit(1 << 20);
  reactor_.RunUntilIdle();
  EXPECT_EQ(conn_->pending_bytes(), 0u);
  EXPECT_GT(transport_->written(), 120u * 1000);
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
