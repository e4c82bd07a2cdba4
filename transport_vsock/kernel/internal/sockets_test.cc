#include "transport_vsock/kernel/internal/sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace kernel {
namespace internal {
namespace {

using ::testing::HasSubstr;

class SocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-kernel-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unlink((dir_ + "/s").c_str());
    ::rmdir(dir_.c_str());
  }
  // A bound Unix socket at |path|, listening or not.
  UniqueFd Bind(const std::string& path, bool listen) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto addr = UnixAddress(path);
    EXPECT_THAT(addr, IsOk());
    EXPECT_EQ(::bind(fd.get(), addr->get(), addr->len), 0);
    if (listen) {
      EXPECT_EQ(::listen(fd.get(), 1), 0);
    }
    return fd;
  }
  std::string dir_;
};

TEST_F(SocketsTest, UnixAddressRoundTrips) {
  VRPC_ASSERT_OK_AND_ASSIGN(SockAddr a, UnixAddress("/tmp/x.sock"));
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_EQ(FormatSockAddr(a.get(), a.len), "unix:/tmp/x.sock");
  EXPECT_THAT(UnixAddress(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(UnixAddress(std::string(200, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SocketsTest, VsockAddressFormats) {
  // Formatting only: no AF_VSOCK socket is opened on this machine.
  SockAddr a = VsockAddress(3, 5000);
  EXPECT_EQ(a.family(), AF_VSOCK);
  EXPECT_EQ(FormatSockAddr(a.get(), a.len), "vsock:3:5000");
  EXPECT_EQ(FormatSockAddr(a.get(), a.len, SOCK_SEQPACKET), "vsock-seqpacket:3:5000");
}

TEST_F(SocketsTest, NewSocketMakesUnixSeqpacket) {
  VRPC_ASSERT_OK_AND_ASSIGN(UniqueFd fd, NewSocket(AF_UNIX, SOCK_SEQPACKET));
  EXPECT_EQ(SocketType(fd.get()), SOCK_SEQPACKET);
  EXPECT_NE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
  VRPC_ASSERT_OK_AND_ASSIGN(UniqueFd st, NewStreamSocket(AF_UNIX));
  EXPECT_EQ(SocketType(st.get()), SOCK_STREAM);
  EXPECT_EQ(SocketType(-1), -1);
}

TEST_F(SocketsTest, ErrnoMapsToTheConnectionContract) {
  EXPECT_THAT(SocketErrorStatus(ETIMEDOUT, "connect to x"),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("connect to x")));
  // connect(2) to a transport without SEQPACKET.
  EXPECT_THAT(SocketErrorStatus(ESOCKTNOSUPPORT, "c"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("SOCK_SEQPACKET")));
  for (int err : {ECONNREFUSED, ECONNRESET, ENODEV, ENOENT, EPIPE, EHOSTUNREACH}) {
    EXPECT_THAT(SocketErrorStatus(err, "c"), StatusIs(absl::StatusCode::kUnavailable)) << err;
  }
}

TEST_F(SocketsTest, StaleSocketIsRemovedLiveOneAndFilesAreNot) {
  const std::string path = dir_ + "/s";
  VRPC_EXPECT_OK(RemoveStaleUnixSocket(path));  // nothing there
  {
    UniqueFd live = Bind(path, /*listen=*/true);
    EXPECT_THAT(RemoveStaleUnixSocket(path),
                StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("listening")));
  }
  // The listener is gone; its file stays behind, stale.
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  VRPC_EXPECT_OK(RemoveStaleUnixSocket(path));
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
  // A regular file is never removed.
  UniqueFd file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  ASSERT_TRUE(file.valid());
  EXPECT_THAT(RemoveStaleUnixSocket(path),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("not a socket")));
  EXPECT_EQ(::lstat(path.c_str(), &st), 0);
}

TEST_F(SocketsTest, PeerAndLocalAddresses) {
  const std::string path = dir_ + "/s";
  UniqueFd listener = Bind(path, true);
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto addr = UnixAddress(path);
  ASSERT_EQ(::connect(client.get(), addr->get(), addr->len), 0);
  EXPECT_EQ(PeerAddressOf(client.get()), "unix:" + path);
  EXPECT_EQ(LocalAddressOf(listener.get()), "unix:" + path);
  UniqueFd accepted(::accept(listener.get(), nullptr, nullptr));
  EXPECT_EQ(PeerAddressOf(accepted.get()), "unix:");  // the client is unnamed
  EXPECT_EQ(PendingSocketError(client.get()), 0);
}

}  // namespace
}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
