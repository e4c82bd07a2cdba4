#include "transport_vsock/vhost_user/listener.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <stdlib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/recording_device.h"
#include "transport_vsock/vhost_user/testing/resources.h"
#include "transport_vsock/vhost_user/testing/scripted_frontend.h"

namespace vrpc {
namespace vhost_user {
namespace {

using testing::CountOpenFds;
using testing::ScriptedFrontend;

// Bazel's TEST_TMPDIR is too long for sockaddr_un (108 bytes): use a fresh
// directory under /tmp.
char g_dir[] = "/tmp/vrpc-vu-XXXXXX";

std::string TempPath(const std::string& name) {
  static const bool made = [] {
    if (::mkdtemp(g_dir) == nullptr) return false;
    std::atexit([] { ::rmdir(g_dir); });
    return true;
  }();
  EXPECT_TRUE(made);
  return absl::StrCat(g_dir, "/", name);
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    ADD_FAILURE() << "path too long: " << path;
    return addr;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

UniqueFd Connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr = Address(path);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << "connect: errno " << errno;
  return fd;
}

TEST(ListenerTest, CreateAcceptAndCleanUp) {
  const std::string path = TempPath("listen");
  const size_t fds = CountOpenFds();
  {
    VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Listener> l, Listener::Create(path));
    EXPECT_TRUE(IsSocket(path));
    EXPECT_THAT(l->Accept(), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(l->AcceptWithTimeout(absl::Milliseconds(20)),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
    UniqueFd client = Connect(path);
    VRPC_ASSERT_OK_AND_ASSIGN(UniqueFd server, l->AcceptWithTimeout(absl::Seconds(2)));
    EXPECT_TRUE(server.valid());
  }
  EXPECT_FALSE(IsSocket(path)) << "path not unlinked";
  EXPECT_EQ(CountOpenFds(), fds);
}

TEST(ListenerTest, StaleSocketIsReplaced) {
  const std::string path = TempPath("stale");
  {
    // A socket file whose owner died without unlinking it.
    UniqueFd dead(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr = Address(path);
    ASSERT_EQ(::bind(dead.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_TRUE(IsSocket(path));
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Listener> l, Listener::Create(path));
  UniqueFd client = Connect(path);
  VRPC_EXPECT_OK(l->AcceptWithTimeout(absl::Seconds(2)).status());
}

TEST(ListenerTest, LiveSocketAndOtherFilesAreNotTouched) {
  const std::string path = TempPath("live");
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Listener> first, Listener::Create(path));
  EXPECT_THAT(Listener::Create(path), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(IsSocket(path));

  const std::string file = TempPath("regular");
  { std::ofstream(file) << "keep me"; }
  EXPECT_THAT(Listener::Create(file), StatusIs(absl::StatusCode::kAlreadyExists));
  std::ifstream in(file);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
  ::unlink(file.c_str());

  EXPECT_THAT(Listener::Create(std::string(200, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Listener::Create(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

// One frontend at a time: the second waits in the backlog until the first
// is gone, then gets a fresh session.
TEST(ListenerTest, FrontendsOneAfterAnother) {
  const std::string path = TempPath("serve");
  testing::RecordingDevice device(2);
  const size_t fds = CountOpenFds();
  {
    VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Listener> l, Listener::Create(path));
    Backend backend(&device);
    ScriptedFrontend first(Connect(path));
    ScriptedFrontend second(Connect(path));
    for (ScriptedFrontend* f : {&first, &second}) {
      VRPC_ASSERT_OK_AND_ASSIGN(UniqueFd conn, l->AcceptWithTimeout(absl::Seconds(2)));
      VRPC_ASSERT_OK(backend.Attach(std::move(conn)));
      f->SendU64(kSetProtocolFeatures, 0x209);
      f->SendEmpty(kGetQueueNum);
      VRPC_ASSERT_OK(backend.HandleReadable());
      std::optional<testing::Reply> r = f->ReadReply();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->payload, EncodeU64(2));
      f->Close();
      pollfd pfd = {backend.socket_fd(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 2000), 1);
      EXPECT_THAT(backend.HandleReadable(), StatusIs(absl::StatusCode::kUnavailable));
      backend.Disconnect();
    }
    EXPECT_EQ(backend.stats().sessions, 2u);
  }
  EXPECT_EQ(CountOpenFds(), fds);
  EXPECT_FALSE(IsSocket(path));
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
