// VsockHost against a real guest protocol engine (standing in for the
// virtqueues) and real Unix sockets, on a manual-clock reactor.
#include "transport_vsock/device/vsock_host.h"

#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <string>

#include "core/base/status_matchers.h"
#include "core/io/manual_reactor.h"
#include "transport_vsock/device/testing/host_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

using ::testing::Contains;

using testing::kGuestCid;
using testing::Pattern;

UniqueFd UnixSocket() {
  return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

class VsockHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-host-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uds_ = dir_ + "/vm.sock";
    ASSERT_THAT(h_.Start(uds_), IsOk());
    host_ = &h_.host();
    guest_ = &h_.guest();
  }
  void TearDown() override {
    h_.StopHost();
    (void)!::system(("rm -rf " + dir_).c_str());
  }

  void Settle() { ASSERT_TRUE(h_.Settle()) << "never settled"; }
  bool GuestHas(ConnId id, EventType type) { return h_.GuestHas(id, type); }

  // A server listening on <uds>_<port>.
  UniqueFd ListenOn(uint32_t port) {
    UniqueFd fd = UnixSocket();
    sockaddr_un addr = Address(uds_ + "_" + std::to_string(port));
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd.get(), 8), 0);
    return fd;
  }

  UniqueFd ConnectToVm() {
    UniqueFd fd = UnixSocket();
    sockaddr_un addr = Address(uds_);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  // Reads what is available on a non-blocking socket; sets |eof| on EOF.
  static std::string Drain(int fd, bool* eof = nullptr) {
    std::string out;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 && eof != nullptr) *eof = true;
      if (n < 0 && errno != EAGAIN && eof != nullptr) *eof = true;  // reset counts as end
      return out;
    }
  }

  // Moves |data| from a socket to a guest connection and |reply| back.
  void Exchange(int fd, ConnId g, const std::string& data, const std::string& reply) {
    size_t written = 0;
    std::string guest_got;
    SliceChain to_send(Slice::Copy(reply));
    std::string socket_got;
    for (int i = 0; i < 100000 && (guest_got.size() < data.size() ||
                                    socket_got.size() < reply.size());
         ++i) {
      if (written < data.size()) {
        const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
      }
      if (!to_send.empty()) {
        ASSERT_THAT(guest_->Send(g, to_send, reactor_.Now(), guest_out_), IsOk());
      }
      auto got = guest_->Read(g, SIZE_MAX, guest_out_);
      ASSERT_THAT(got, IsOk());
      guest_got += got->ToString();
      Settle();
      socket_got += Drain(fd);
    }
    EXPECT_EQ(guest_got, data);
    EXPECT_EQ(socket_got, reply);
  }

  std::string dir_;
  std::string uds_;
  testing::HostHarness h_;
  io::ManualReactor& reactor_ = h_.reactor();
  Actions& guest_out_ = h_.guest_out();
  VsockHost* host_ = nullptr;
  Engine* guest_ = nullptr;
};

TEST_F(VsockHostTest, GuestConnectionIsForwardedToUdsPort) {
  UniqueFd server = ListenOn(5000);
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest_->Connect(5000, SocketType::kStream,
                                                     reactor_.Now(), guest_out_));
  Settle();
  ASSERT_TRUE(GuestHas(g, EventType::kConnected));
  UniqueFd conn(::accept4(server.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(host_->bridge_count(), 1u);
  Exchange(conn.get(), g, Pattern(1 << 20, 1), Pattern(1 << 20, 2));
}

TEST_F(VsockHostTest, GuestConnectionToNothingIsReset) {
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest_->Connect(5001, SocketType::kStream,
                                                     reactor_.Now(), guest_out_));
  Settle();
  EXPECT_TRUE(GuestHas(g, EventType::kRefused));
  EXPECT_EQ(host_->bridge_count(), 0u);
  EXPECT_EQ(host_->engine().stats().connections, 0u);
}

TEST_F(VsockHostTest, HostClientConnectsToGuestPort) {
  VRPC_ASSERT_OK(guest_->Listen(6000, SocketType::kStream, 4));
  UniqueFd client = ConnectToVm();
  const std::string hello = "CONNECT 6000\nearly bytes";
  ASSERT_EQ(::write(client.get(), hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  Settle();
  auto g = guest_->Accept(6000);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(Drain(client.get()), "OK 6000\n");
  auto early = guest_->Read(*g, SIZE_MAX, guest_out_);
  ASSERT_THAT(early, IsOk());
  EXPECT_EQ(early->ToString(), "early bytes");
  Exchange(client.get(), *g, Pattern(300000, 3), Pattern(500000, 4));
}

TEST_F(VsockHostTest, ConnectToClosedGuestPortClosesTheSocket) {
  UniqueFd client = ConnectToVm();
  ASSERT_EQ(::write(client.get(), "CONNECT 6001\n", 13), 13);
  Settle();
  bool eof = false;
  EXPECT_EQ(Drain(client.get(), &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_EQ(host_->bridge_count(), 0u);
}

TEST_F(VsockHostTest, BadHandshakeClosesTheSocket) {
  for (const std::string& bad : {std::string("HELLO\n"), std::string("CONNECT x\n"),
                                 std::string(200, 'C')}) {
    UniqueFd client = ConnectToVm();
    (void)!::write(client.get(), bad.data(), bad.size());
    Settle();
    bool eof = false;
    Drain(client.get(), &eof);
    EXPECT_TRUE(eof) << bad;
  }
  EXPECT_EQ(host_->bridge_count(), 0u);
  EXPECT_EQ(host_->engine().stats().connections, 0u);
}

// HARDENING.md row 16: the host's SHUT_WR reaches the guest as EOF after the
// data, and the guest can still answer.
TEST_F(VsockHostTest, HalfCloseBothWays) {
  VRPC_ASSERT_OK(guest_->Listen(6000, SocketType::kStream, 4));
  UniqueFd client = ConnectToVm();
  const std::string req = "CONNECT 6000\nrequest";
  ASSERT_EQ(::write(client.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  Settle();
  auto g = guest_->Accept(6000);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(guest_->Read(*g, SIZE_MAX, guest_out_)->ToString(), "request");
  EXPECT_TRUE(guest_->AtEof(*g));
  SliceChain reply(Slice::Copy(absl::string_view("response")));
  ASSERT_THAT(guest_->Send(*g, reply, reactor_.Now(), guest_out_), IsOkAndHolds(8u));
  Settle();
  EXPECT_EQ(Drain(client.get()), "OK 6000\nresponse");
  guest_->Close(*g, reactor_.Now(), guest_out_);
  Settle();
  bool eof = false;
  Drain(client.get(), &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(host_->bridge_count(), 0u);
}

TEST_F(VsockHostTest, SlowGuestBoundsWhatTheHostBuffers) {
  VRPC_ASSERT_OK(guest_->Listen(6000, SocketType::kStream, 4));
  UniqueFd client = ConnectToVm();
  ASSERT_EQ(::write(client.get(), "CONNECT 6000\n", 13), 13);
  Settle();
  auto g = guest_->Accept(6000);
  ASSERT_TRUE(g.has_value());
  Drain(client.get());
  // The guest reads nothing while the client writes as much as it can.
  const std::string chunk(65536, 'q');
  size_t written = 0;
  for (int i = 0; i < 200; ++i) {
    const ssize_t n = ::write(client.get(), chunk.data(), chunk.size());
    if (n > 0) written += static_cast<size_t>(n);
    Settle();
  }
  auto info = guest_->GetInfo(*g, reactor_.Now());
  EXPECT_EQ(info->credit.buffered, 256u * 1024);  // exactly the credit it gave
  EXPECT_LT(written, 200u * 65536);               // the client was pushed back
  // Draining the guest lets everything through.
  size_t got = 0;
  for (int i = 0; i < 1000 && got < written; ++i) {
    got += guest_->Read(*g, SIZE_MAX, guest_out_)->size();
    Settle();
  }
  EXPECT_EQ(got, written);
}

// The reverse: a host client that stops reading fills its socket; once it
// reads again, the bridge must keep pulling from the engine (and so grant
// the guest credit) without new guest data to wake it. (Stalled the QEMU
// e2e under ASan, where the host reader was slow.)
TEST_F(VsockHostTest, SlowHostReaderGetsEverything) {
  UniqueFd server = ListenOn(5000);
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest_->Connect(5000, SocketType::kStream,
                                                     reactor_.Now(), guest_out_));
  Settle();
  UniqueFd conn(::accept4(server.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  const std::string data = Pattern(4 << 20, 5);
  SliceChain out(Slice::Copy(data));
  // The host reads nothing until the guest is stuck on credit.
  for (int i = 0; i < 50; ++i) {
    ASSERT_THAT(guest_->Send(g, out, reactor_.Now(), guest_out_), IsOk());
    Settle();
  }
  ASSERT_FALSE(out.empty()) << "the socket never filled";
  std::string got;
  for (int i = 0; i < 20000 && got.size() < data.size(); ++i) {
    got += Drain(conn.get());
    Settle();
    if (!out.empty()) {
      ASSERT_THAT(guest_->Send(g, out, reactor_.Now(), guest_out_), IsOk());
      Settle();
    }
  }
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

// A host client that leaves while the guest still sends must not take the
// process with it: the bridge's write gets EPIPE, never SIGPIPE (this test
// keeps SIGPIPE's default action, which would kill it).
TEST_F(VsockHostTest, HostClientGoneMidStreamIsNoSignal) {
  ASSERT_EQ(::signal(SIGPIPE, SIG_DFL), SIG_DFL) << "something ignores SIGPIPE already";
  UniqueFd server = ListenOn(5000);
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest_->Connect(5000, SocketType::kStream,
                                                     reactor_.Now(), guest_out_));
  Settle();
  UniqueFd conn(::accept4(server.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  conn.Reset();  // the host side goes away
  SliceChain out(Slice::Copy(Pattern(1 << 20, 9)));
  for (int i = 0; i < 20 && !out.empty(); ++i) {
    (void)guest_->Send(g, out, reactor_.Now(), guest_out_);
    Settle();
  }
  EXPECT_TRUE(GuestHas(g, EventType::kClosed));
  EXPECT_EQ(host_->bridge_count(), 0u);
}

TEST_F(VsockHostTest, TransportResetClosesEverySocket) {
  UniqueFd server = ListenOn(5000);
  VRPC_ASSERT_OK(guest_->Connect(5000, SocketType::kStream, reactor_.Now(), guest_out_).status());
  VRPC_ASSERT_OK(guest_->Listen(6000, SocketType::kStream, 4));
  UniqueFd client = ConnectToVm();
  ASSERT_EQ(::write(client.get(), "CONNECT 6000\n", 13), 13);
  Settle();
  UniqueFd conn(::accept4(server.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(host_->bridge_count(), 2u);
  host_->OnTransportReset(absl::UnavailableError("frontend disconnected"));
  Settle();
  bool eof1 = false, eof2 = false;
  Drain(conn.get(), &eof1);
  Drain(client.get(), &eof2);
  EXPECT_TRUE(eof1);
  EXPECT_TRUE(eof2);
  EXPECT_EQ(host_->bridge_count(), 0u);
  EXPECT_EQ(host_->engine().stats().connections, 0u);
}

TEST_F(VsockHostTest, UnansweredGuestRequestTimesOut) {
  // A hostile guest that never completes anything still gets cleaned up.
  VRPC_ASSERT_OK_AND_ASSIGN(ConnId g, guest_->Connect(5002, SocketType::kStream,
                                                     reactor_.Now(), guest_out_));
  Settle();
  EXPECT_TRUE(GuestHas(g, EventType::kRefused));
  reactor_.AdvanceTime(absl::Seconds(5));
  EXPECT_EQ(host_->engine().stats().connections, 0u);
}

TEST(VsockHostCreateTest, RejectsBadOptions) {
  class NullSink : public PacketSink {
    void SendToPeer(std::vector<Packet>& packets) override { packets.clear(); }
  };
  io::ManualReactor reactor;
  NullSink sink;
  VsockHostOptions options;
  options.guest_cid = 2;
  EXPECT_THAT(VsockHost::Create(options, reactor, sink),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.guest_cid = 3;
  options.uds_path = std::string(200, 'p');
  EXPECT_THAT(VsockHost::Create(options, reactor, sink),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
