// The kernel socket transport over AF_UNIX (and hybrid CONNECT/OK against a
// fake hybrid server), on a ManualReactor: real sockets, deterministic
// turns and clock. No AF_VSOCK socket is opened here (tests/kernel runs
// vsock inside a QEMU guest).
#include "transport_vsock/kernel/kernel_transport.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
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
#include "core/transport/listener.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace kernel {
namespace {

using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using transport::ConnectionState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using E = ConnectionEventType;
constexpr size_t kMiB = 1 << 20;

uint8_t PatternByte(uint64_t i) { return static_cast<uint8_t>((i * 131) ^ (i >> 11)); }

Slice PatternSlice(uint64_t offset, size_t n) {
  uint8_t* data = nullptr;
  Slice s = Slice::Allocate(n, &data);
  for (size_t i = 0; i < n; ++i) data[i] = PatternByte(offset + i);
  return s;
}

transport::Address Parse(const std::string& text) {
  auto a = transport::ParseAddress(text);
  VRPC_CHECK(a.ok()) << a.status();
  return *a;
}

// One end of a connection: records events, and optionally streams |to_send|
// pattern bytes out and checks what comes in.
struct Peer {
  std::unique_ptr<Connection> conn;
  std::vector<E> events;
  absl::Status closed_status = absl::UnknownError("not closed");
  bool reading = true;  // read on kReadable
  uint64_t to_send = 0, sent = 0, received = 0, mismatches = 0;
  SliceChain pending;
  bool shutdown_when_sent = false;

  void Attach(std::unique_ptr<Connection> c) {
    conn = std::move(c);
    conn->SetEventHandler([this](const ConnectionEvent& e) {
      events.push_back(e.type);
      if (e.type == E::kClosed) closed_status = e.status;
      if (reading && (e.type == E::kReadable || e.type == E::kClosed)) ReadAll();
      if (e.type == E::kConnected || e.type == E::kWritable) Pump();
    });
  }
  void ReadAll() {
    for (;;) {
      auto in = conn->Read(SIZE_MAX);
      ASSERT_THAT(in, IsOk());
      if (in->empty()) return;
      for (const Slice& s : in->slices()) {
        for (size_t i = 0; i < s.size(); ++i) {
          if (s.data()[i] != PatternByte(received + i)) ++mismatches;
        }
        received += s.size();
      }
    }
  }
  void Pump() {
    if (conn->state() != ConnectionState::kOpen) return;
    for (;;) {
      if (pending.empty() && sent + pending.size() < to_send) {
        const uint64_t off = sent;
        pending.Append(PatternSlice(off, std::min<uint64_t>(64 * 1024, to_send - off)));
      }
      if (pending.empty()) break;
      auto n = conn->Write(pending);
      ASSERT_THAT(n, IsOk());
      sent += *n;
      if (*n == 0) return;  // blocked: kWritable resumes
    }
    if (shutdown_when_sent && sent == to_send) {
      shutdown_when_sent = false;
      VRPC_EXPECT_OK(conn->ShutdownWrite());
    }
  }
  size_t Count(E type) const { return std::count(events.begin(), events.end(), type); }
};

class KernelTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-kt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/s";
  }
  void TearDown() override {
    client_.conn.reset();
    server_.conn.reset();
    listener_.reset();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  void Listen(const KernelOptions& options = {}) {
    VRPC_ASSERT_OK_AND_ASSIGN(listener_, ListenKernel(Parse("unix:" + path_), reactor_, options));
    listener_->SetAcceptHandler([this](std::unique_ptr<Connection> c) {
      ++accepted_;
      server_.Attach(std::move(c));
    });
  }
  // Connects client_ to |address| and runs the reactor until idle.
  void Connect(const std::string& address, const KernelOptions& options = {}) {
    VRPC_ASSERT_OK_AND_ASSIGN(auto connector, KernelConnector(Parse(address), reactor_, options));
    EXPECT_EQ(connector->address(), address);
    VRPC_ASSERT_OK_AND_ASSIGN(auto conn, connector->Connect());
    EXPECT_EQ(conn->state(), ConnectionState::kConnecting);
    client_.Attach(std::move(conn));
    reactor_.RunUntilIdle();
  }
  void ConnectPair() {
    Listen();
    Connect("unix:" + path_);
    ASSERT_EQ(client_.conn->state(), ConnectionState::kOpen);
    ASSERT_NE(server_.conn, nullptr);
  }
  // Adopts both ends of an AF_UNIX socketpair of |type| and checks that
  // 300000 bytes and the half-close get across intact.
  void ExpectAdoptedPairCarries300000Bytes(int type) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
    VRPC_ASSERT_OK_AND_ASSIGN(auto a, AdoptConnectedSocket(UniqueFd(sv[0]), reactor_));
    VRPC_ASSERT_OK_AND_ASSIGN(auto b, AdoptConnectedSocket(UniqueFd(sv[1]), reactor_));
    client_.Attach(std::move(a));
    server_.Attach(std::move(b));
    client_.to_send = 300000;
    client_.shutdown_when_sent = true;
    client_.Pump();
    for (int i = 0; i < 1000 && server_.Count(E::kPeerShutdown) == 0; ++i) reactor_.RunUntilIdle();
    EXPECT_EQ(server_.received, 300000u);
    EXPECT_EQ(server_.mismatches, 0u);
  }

  io::ManualReactor reactor_;
  std::string dir_, path_;
  std::unique_ptr<transport::Listener> listener_;
  int accepted_ = 0;
  Peer client_, server_;
};

TEST_F(KernelTransportTest, ConnectsAndAccepts) {
  ConnectPair();
  EXPECT_THAT(client_.events, ElementsAre(E::kConnected));
  EXPECT_TRUE(server_.events.empty());  // accepted connections are open already
  EXPECT_EQ(server_.conn->state(), ConnectionState::kOpen);
  EXPECT_EQ(listener_->address(), "unix:" + path_);
  EXPECT_EQ(client_.conn->peer_address(), "unix:" + path_);
  EXPECT_EQ(server_.conn->peer_address(), "unix:");  // an unnamed client
  EXPECT_EQ(accepted_, 1);
  // Unix sockets have no credit counters.
  const transport::CreditInfo credit = client_.conn->credit();
  EXPECT_EQ(credit.local_buf_alloc, 0u);
  EXPECT_FALSE(credit.blocked);
}

TEST_F(KernelTransportTest, MovesEightMiBBothWaysAndClosesInOrder) {
  ConnectPair();
  client_.to_send = server_.to_send = 8 * kMiB + 123;
  client_.shutdown_when_sent = server_.shutdown_when_sent = true;
  client_.Pump();
  server_.Pump();
  for (int i = 0; i < 100000 && (client_.Count(E::kClosed) == 0 || server_.Count(E::kClosed) == 0);
       ++i) {
    reactor_.RunUntilIdle();
  }
  for (Peer* p : {&client_, &server_}) {
    EXPECT_EQ(p->sent, 8 * kMiB + 123);
    EXPECT_EQ(p->received, 8 * kMiB + 123);
    EXPECT_EQ(p->mismatches, 0u);
    EXPECT_EQ(p->Count(E::kClosed), 1u);
    VRPC_EXPECT_OK(p->closed_status);
    EXPECT_EQ(p->events.back(), E::kClosed);
    EXPECT_EQ(p->Count(E::kPeerShutdown), 1u);
    EXPECT_EQ(p->conn->state(), ConnectionState::kClosed);
    EXPECT_TRUE(p->conn->AtEof());
    const transport::ConnectionStats stats = p->conn->stats();
    EXPECT_EQ(stats.bytes_read, 8 * kMiB + 123);
    EXPECT_EQ(stats.bytes_written, 8 * kMiB + 123);
    // The kernel copies each byte once each way.
    EXPECT_EQ(stats.rx_bytes_copied, 8 * kMiB + 123);
    EXPECT_EQ(stats.tx_bytes_copied, 8 * kMiB + 123);
  }
  // 8 MiB does not fit in a Unix socket's buffers: both writers blocked.
  EXPECT_GE(client_.Count(E::kCreditBlocked), 1u);
  EXPECT_EQ(client_.Count(E::kCreditBlocked), client_.Count(E::kWritable));
  // Writes after the end are refused.
  SliceChain more(Slice::Copy("x"));
  EXPECT_THAT(client_.conn->Write(more), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(KernelTransportTest, NoListenerIsRefusedWithUnavailable) {
  // No file at all.
  Connect("unix:" + path_);
  EXPECT_THAT(client_.events, ElementsAre(E::kClosed));
  EXPECT_THAT(client_.closed_status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(path_)));
  EXPECT_EQ(client_.conn->state(), ConnectionState::kClosed);
  // A stale socket file (its listener is gone): ECONNREFUSED.
  Listen();
  listener_.reset();
  UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::snprintf(un.sun_path, sizeof(un.sun_path), "%s", path_.c_str());
  ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&un), sizeof(un)), 0);
  stale.Reset();
  Peer other;
  client_ = Peer();
  Connect("unix:" + path_);
  EXPECT_THAT(client_.events, ElementsAre(E::kClosed));
  EXPECT_THAT(client_.closed_status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refused")));
}

TEST_F(KernelTransportTest, PeerCloseIsEofThenAnOrderlyClose) {
  ConnectPair();
  SliceChain bye(Slice::Copy("bye"));
  VRPC_ASSERT_OK_AND_ASSIGN(size_t n, server_.conn->Write(bye));
  ASSERT_EQ(n, 3u);
  server_.conn.reset();  // close(2)
  client_.reading = false;
  reactor_.RunUntilIdle();
  EXPECT_THAT(client_.events, ElementsAre(E::kConnected, E::kReadable, E::kPeerShutdown));
  EXPECT_FALSE(client_.conn->AtEof());  // "bye" is still unread
  EXPECT_EQ(client_.conn->state(), ConnectionState::kOpen);
  VRPC_ASSERT_OK_AND_ASSIGN(SliceChain in, client_.conn->Read(SIZE_MAX));
  EXPECT_EQ(in.ToString(), "bye");
  EXPECT_TRUE(client_.conn->AtEof());
  reactor_.RunUntilIdle();
  // The peer is gone both ways and everything was read: an orderly end.
  EXPECT_THAT(client_.events,
              ElementsAre(E::kConnected, E::kReadable, E::kPeerShutdown, E::kClosed));
  VRPC_EXPECT_OK(client_.closed_status);
  SliceChain more(Slice::Copy("x"));
  EXPECT_THAT(client_.conn->Write(more), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(KernelTransportTest, PeerClosingAfterItsEofWasReadEndsTheConnection) {
  ConnectPair();
  VRPC_ASSERT_OK(server_.conn->ShutdownWrite());
  reactor_.RunUntilIdle();
  EXPECT_THAT(client_.events, ElementsAre(E::kConnected, E::kPeerShutdown, E::kReadable));
  EXPECT_TRUE(client_.conn->AtEof());
  EXPECT_EQ(client_.conn->state(), ConnectionState::kOpen);  // we may still send
  server_.conn.reset();  // now it is gone both ways
  reactor_.RunUntilIdle();
  EXPECT_THAT(client_.events,
              ElementsAre(E::kConnected, E::kPeerShutdown, E::kReadable, E::kClosed));
  VRPC_EXPECT_OK(client_.closed_status);
}

TEST_F(KernelTransportTest, HalfCloseKeepsTheOtherDirectionOpen) {
  ConnectPair();
  VRPC_ASSERT_OK(client_.conn->ShutdownWrite());
  SliceChain late(Slice::Copy("x"));
  EXPECT_THAT(client_.conn->Write(late), StatusIs(absl::StatusCode::kFailedPrecondition));
  reactor_.RunUntilIdle();
  EXPECT_THAT(server_.events, ElementsAre(E::kPeerShutdown, E::kReadable));
  EXPECT_TRUE(server_.conn->AtEof());
  EXPECT_EQ(server_.conn->state(), ConnectionState::kOpen);
  // The server still sends; the client still receives.
  server_.to_send = 1 * kMiB;
  server_.shutdown_when_sent = true;
  server_.Pump();
  for (int i = 0; i < 10000 && client_.Count(E::kClosed) == 0; ++i) reactor_.RunUntilIdle();
  EXPECT_EQ(client_.received, 1 * kMiB);
  EXPECT_EQ(client_.mismatches, 0u);
  VRPC_EXPECT_OK(client_.closed_status);
  EXPECT_EQ(server_.Count(E::kClosed), 1u);
  VRPC_EXPECT_OK(server_.closed_status);
}

TEST_F(KernelTransportTest, StalledReaderBlocksTheWriterAndBuffersBoundedly) {
  KernelOptions options;
  options.rx_buffer_bytes = 64 * 1024;
  Listen(options);
  Connect("unix:" + path_);
  ASSERT_NE(server_.conn, nullptr);
  server_.reading = false;
  client_.to_send = 8 * kMiB;
  client_.Pump();
  reactor_.RunUntilIdle();
  // The writer stalled: kCreditBlocked, no kWritable yet, blocked in credit().
  ASSERT_EQ(client_.Count(E::kCreditBlocked), 1u);
  EXPECT_EQ(client_.Count(E::kWritable), 0u);
  EXPECT_TRUE(client_.conn->credit().blocked);
  EXPECT_LT(client_.sent, 8 * kMiB);
  // The reader read ahead no more than its bound; the rest waits in the kernel.
  EXPECT_LE(server_.conn->stats().rx_bytes_copied, 64 * 1024u);
  EXPECT_GT(server_.conn->stats().rx_bytes_copied, 0u);
  // Another Write while blocked takes nothing.
  SliceChain more(Slice::Copy("x"));
  EXPECT_THAT(client_.conn->Write(more), IsOkAndHolds(0u));
  // The reader drains: the writer gets kWritable and finishes.
  server_.reading = true;
  server_.ReadAll();
  for (int i = 0; i < 100000 && server_.received < 8 * kMiB; ++i) {
    reactor_.RunUntilIdle();
    server_.ReadAll();
  }
  EXPECT_EQ(server_.received, 8 * kMiB);
  EXPECT_EQ(server_.mismatches, 0u);
  EXPECT_GE(client_.Count(E::kWritable), 1u);
  EXPECT_FALSE(client_.conn->credit().blocked);
  EXPECT_EQ(client_.Count(E::kCreditBlocked), client_.Count(E::kWritable));
}

TEST_F(KernelTransportTest, PeerClosingOnUnreadDataIsAReset) {
  KernelOptions options;
  options.rx_buffer_bytes = 4096;
  Listen(options);
  Connect("unix:" + path_);
  ASSERT_NE(server_.conn, nullptr);
  server_.reading = false;
  // More than the server reads ahead: the rest stays in its kernel queue,
  // and closing a socket with unread data there resets the peer.
  SliceChain data(PatternSlice(0, 64 * 1024));
  VRPC_ASSERT_OK(client_.conn->Write(data).status());
  reactor_.RunUntilIdle();
  server_.conn.reset();
  reactor_.RunUntilIdle();
  ASSERT_EQ(client_.Count(E::kClosed), 1u);
  EXPECT_THAT(client_.closed_status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(client_.events.back(), E::kClosed);
}

TEST_F(KernelTransportTest, NoEventsAfterClose) {
  ConnectPair();
  SliceChain data(Slice::Copy("hello"));
  VRPC_ASSERT_OK(server_.conn->Write(data).status());
  VRPC_ASSERT_OK(server_.conn->ShutdownWrite());
  client_.conn->Close();
  client_.conn->Close();  // idempotent
  reactor_.RunUntilIdle();
  EXPECT_THAT(client_.events, ElementsAre(E::kConnected));
  EXPECT_EQ(client_.conn->state(), ConnectionState::kClosed);
  EXPECT_THAT(client_.conn->status(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(client_.conn->Read(10), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(client_.conn->Write(data), StatusIs(absl::StatusCode::kFailedPrecondition));
  // The server sees the client go.
  EXPECT_EQ(server_.Count(E::kClosed), 1u);
}

TEST_F(KernelTransportTest, HandlerMayDestroyTheConnection) {
  ConnectPair();
  client_.conn->SetEventHandler([this](const ConnectionEvent& e) {
    client_.events.push_back(e.type);
    client_.conn.reset();
  });
  SliceChain data(Slice::Copy("x"));
  VRPC_ASSERT_OK(server_.conn->Write(data).status());
  server_.conn.reset();  // readable, peer shutdown and close all pending
  reactor_.RunUntilIdle();
  EXPECT_THAT(client_.events, ElementsAre(E::kConnected, E::kReadable));
}

TEST_F(KernelTransportTest, BacklogWaitsUntilAHandlerIsSet) {
  VRPC_ASSERT_OK_AND_ASSIGN(listener_, ListenKernel(Parse("unix:" + path_), reactor_));
  Connect("unix:" + path_);
  // A Unix connect completes into the backlog.
  EXPECT_THAT(client_.events, ElementsAre(E::kConnected));
  EXPECT_EQ(accepted_, 0);
  listener_->SetAcceptHandler([this](std::unique_ptr<Connection> c) {
    ++accepted_;
    server_.Attach(std::move(c));
  });
  reactor_.RunUntilIdle();
  EXPECT_EQ(accepted_, 1);
}

TEST_F(KernelTransportTest, ListenErrors) {
  Listen();
  // The path is in use by a live listener.
  EXPECT_THAT(ListenKernel(Parse("unix:" + path_), reactor_),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(ListenKernel(Parse("hvsock:" + path_ + ":5000"), reactor_),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("connect-only")));
  EXPECT_THAT(ListenKernel(Parse("loopback:5"), reactor_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KernelConnector(Parse("loopback:5"), reactor_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The listener removes its socket file when it goes.
  listener_.reset();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
}

TEST_F(KernelTransportTest, AdoptsASocketpair) {
  ExpectAdoptedPairCarries300000Bytes(SOCK_STREAM);
  int dgram[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dgram), 0);
  ::close(dgram[1]);
  EXPECT_THAT(AdoptConnectedSocket(UniqueFd(dgram[0]), reactor_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  int not_socket[2];
  ASSERT_EQ(::pipe(not_socket), 0);
  ::close(not_socket[1]);
  EXPECT_THAT(AdoptConnectedSocket(UniqueFd(not_socket[0]), reactor_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(KernelTransportTest, AdoptsASeqpacketSocketpair) {
  ExpectAdoptedPairCarries300000Bytes(SOCK_SEQPACKET);
}

TEST_F(KernelTransportTest, SeqpacketVsockConnectorOpensNothingUntilConnect) {
  // Only the connector: Connect() would open an AF_VSOCK socket, which
  // never happens on the host (tests/kernel runs it in a guest).
  VRPC_ASSERT_OK_AND_ASSIGN(auto connector,
                            KernelConnector(Parse("vsock-seqpacket:local:1024"), reactor_));
  EXPECT_EQ(connector->address(), "vsock-seqpacket:1:1024");
}

}  // namespace
}  // namespace kernel
}  // namespace vrpc
