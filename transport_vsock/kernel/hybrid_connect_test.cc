// The hybrid-vsock client (hvsock:UDS:PORT) against a fake hybrid server: a
// plain Unix socket the test answers by hand, as Firecracker,
// vhost-device-vsock or vrpc's host agent would (or would not).
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "core/buffer/slice.h"
#include "core/io/manual_reactor.h"
#include "core/transport/address.h"
#include "core/transport/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/kernel/kernel_transport.h"

namespace vrpc {
namespace kernel {
namespace {

using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using E = transport::ConnectionEventType;

class HybridConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-hv-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uds_ = dir_ + "/vm.sock";
    listen_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof(un.sun_path), "%s", uds_.c_str());
    ASSERT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&un), sizeof(un)), 0);
    ASSERT_EQ(::listen(listen_.get(), 8), 0);
  }
  void TearDown() override {
    conn_.reset();
    listen_.Reset();
    ::unlink(uds_.c_str());
    ::rmdir(dir_.c_str());
  }

  // Dials hvsock:<uds>:|port|; the fake server accepts and reads the
  // request line, which it returns.
  std::string Dial(uint32_t port, const KernelOptions& options = {}) {
    auto address = transport::ParseAddress(absl::StrCat("hvsock:", uds_, ":", port));
    VRPC_CHECK(address.ok());
    auto connector = KernelConnector(*address, reactor_, options);
    VRPC_CHECK(connector.ok()) << connector.status();
    auto conn = (*connector)->Connect();
    VRPC_CHECK(conn.ok()) << conn.status();
    conn_ = *std::move(conn);
    conn_->SetEventHandler([this](const ConnectionEvent& e) {
      events_.push_back(e.type);
      if (e.type == E::kClosed) closed_ = e.status;
    });
    reactor_.RunUntilIdle();
    server_.Reset(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    VRPC_CHECK(server_.valid());
    // Byte by byte: the client sent exactly one line.
    std::string line;
    char c = 0;
    while (line.size() < 100 && ::read(server_.get(), &c, 1) == 1) {
      line += c;
      if (c == '\n') break;
    }
    return line;
  }
  void Reply(const std::string& bytes) {
    ASSERT_EQ(::write(server_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    reactor_.RunUntilIdle();
  }
  std::string ReadAllClient() {
    auto in = conn_->Read(SIZE_MAX);
    EXPECT_THAT(in, IsOk());
    return in.ok() ? in->ToString() : "";
  }

  io::ManualReactor reactor_;
  std::string dir_, uds_;
  UniqueFd listen_, server_;
  std::unique_ptr<Connection> conn_;
  std::vector<E> events_;
  absl::Status closed_ = absl::UnknownError("not closed");
};

TEST_F(HybridConnectTest, GuestPortReplyOpensAByteStream) {
  EXPECT_EQ(Dial(5000), "CONNECT 5000\n");
  // Connected at the socket level, but the handshake is not done.
  EXPECT_EQ(conn_->state(), ConnectionState::kConnecting);
  EXPECT_TRUE(events_.empty());
  SliceChain early(Slice::Copy("too early"));
  EXPECT_THAT(conn_->Write(early), StatusIs(absl::StatusCode::kFailedPrecondition));
  // The reply may arrive in pieces.
  Reply("OK 50");
  EXPECT_TRUE(events_.empty());
  Reply("00\n");
  EXPECT_THAT(events_, ElementsAre(E::kConnected));
  EXPECT_EQ(conn_->state(), ConnectionState::kOpen);
  EXPECT_EQ(conn_->peer_address(), "hvsock:" + uds_ + ":5000");
  SliceChain ping(Slice::Copy("ping"));
  EXPECT_THAT(conn_->Write(ping), IsOkAndHolds(4u));
  char buf[4];
  ASSERT_EQ(::read(server_.get(), buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  Reply("pong");
  EXPECT_THAT(events_, ElementsAre(E::kConnected, E::kReadable));
  EXPECT_EQ(ReadAllClient(), "pong");
  EXPECT_EQ(conn_->stats().rx_bytes_copied, 4u);  // the handshake is not payload
}

TEST_F(HybridConnectTest, FirecrackerHostPortReplyIsAccepted) {
  EXPECT_EQ(Dial(52), "CONNECT 52\n");
  Reply("OK 1073741824\n");
  EXPECT_THAT(events_, ElementsAre(E::kConnected));
}

TEST_F(HybridConnectTest, DataRightAfterTheOkLineIsKept) {
  Dial(7);
  // One segment: the reply, the stream's first bytes, then EOF.
  Reply("OK 7\nfirst bytes\nOK 8\n");
  ::shutdown(server_.get(), SHUT_WR);
  reactor_.RunUntilIdle();
  EXPECT_THAT(events_, ElementsAre(E::kConnected, E::kReadable, E::kPeerShutdown));
  EXPECT_EQ(ReadAllClient(), "first bytes\nOK 8\n");
  EXPECT_TRUE(conn_->AtEof());
  EXPECT_EQ(conn_->stats().bytes_read, 17u);
  // We end our side too: an orderly close.
  VRPC_ASSERT_OK(conn_->ShutdownWrite());
  reactor_.RunUntilIdle();
  EXPECT_EQ(events_.back(), E::kClosed);
  VRPC_EXPECT_OK(closed_);
}

TEST_F(HybridConnectTest, ErrorReplyIsUnavailable) {
  Dial(9);
  Reply("ERR no listener\n");
  EXPECT_THAT(events_, ElementsAre(E::kClosed));
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable,
                                HasSubstr("got \"ERR no listener\"")));
  EXPECT_EQ(conn_->state(), ConnectionState::kClosed);
  EXPECT_THAT(conn_->status(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(HybridConnectTest, GarbageWithoutNewlineIsUnavailable) {
  Dial(9);
  Reply(std::string(200, 'z'));
  EXPECT_THAT(events_, ElementsAre(E::kClosed));
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no newline")));
}

TEST_F(HybridConnectTest, EofInTheMiddleOfTheReplyIsUnavailable) {
  Dial(9);
  Reply("OK 9");
  server_.Reset();
  reactor_.RunUntilIdle();
  EXPECT_THAT(events_, ElementsAre(E::kClosed));
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("middle of its reply")));
}

TEST_F(HybridConnectTest, EofWithoutAReplyIsUnavailable) {
  // What a VMM does when nothing listens on the guest port.
  Dial(9);
  server_.Reset();
  reactor_.RunUntilIdle();
  EXPECT_THAT(events_, ElementsAre(E::kClosed));
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("without a reply")));
}

TEST_F(HybridConnectTest, SilentServerTimesOut) {
  KernelOptions options;
  options.connect_timeout = absl::Seconds(3);
  Dial(9, options);
  reactor_.AdvanceTime(absl::Seconds(2));
  EXPECT_TRUE(events_.empty());
  reactor_.AdvanceTime(absl::Seconds(1));
  EXPECT_THAT(events_, ElementsAre(E::kClosed));
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("timed out")));
  // The socket is closed: the server sees EOF.
  char c;
  EXPECT_EQ(::read(server_.get(), &c, 1), 0);
}

TEST_F(HybridConnectTest, NoVmSocketIsUnavailable) {
  listen_.Reset();
  ::unlink(uds_.c_str());
  auto connector = KernelConnector(*transport::ParseAddress("hvsock:" + uds_ + ":1"), reactor_);
  ASSERT_THAT(connector, IsOk());
  VRPC_ASSERT_OK_AND_ASSIGN(conn_, (*connector)->Connect());
  conn_->SetEventHandler([this](const ConnectionEvent& e) {
    events_.push_back(e.type);
    if (e.type == E::kClosed) closed_ = e.status;
  });
  reactor_.RunUntilIdle();
  EXPECT_THAT(events_, ElementsAre(E::kClosed));
  EXPECT_THAT(closed_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(uds_)));
}

}  // namespace
}  // namespace kernel
}  // namespace vrpc
