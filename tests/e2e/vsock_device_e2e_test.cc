// End to end: vrpc's vhost-user vsock device (the host agent's VmServer, in
// this process on an io_uring reactor) attached to QEMU 7.2's
// vhost-user-vsock-pci, with the Debian kernel's own virtio-vsock driver in
// a TCG guest running tests/e2e/guest/vsock_device_guest over AF_VSOCK:
//   (a) the guest connects to host port 5000, served on <uds>_5000, and 8 MiB
//       move each way, verified on both sides;
//   (b) the guest listens on port 6000 and a host client reaches it with
//       "CONNECT 6000\n"; 8 MiB each way;
//   (c) a connect to a host port where nothing listens fails fast;
//   (d) QEMU is killed mid-transfer; the agent resets the connection, and a
//       new VM against the same agent is served.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "core/io/uring_reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host_agent/vm_server.h"
#include "tests/e2e/guest/stream_util.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/qemu_guest.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBytes = 8 << 20;

UniqueFd ListenUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  return fd;
}

UniqueFd AcceptWithin(int lfd, int timeout_ms) {
  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return UniqueFd();
  return UniqueFd(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
}

// Sends |bytes| of |send_seed| (then SHUT_WR) while verifying |recv_seed|.
std::string Exchange(int fd, uint64_t bytes, uint64_t send_seed, uint64_t recv_seed) {
  const double start = e2e::NowSeconds();
  std::thread sender([&] {
    e2e::SendPattern(fd, send_seed, bytes);
    ::shutdown(fd, SHUT_WR);
  });
  e2e::ReceiveResult r = e2e::ReceivePattern(fd, recv_seed);
  sender.join();
  if (r.first_mismatch >= 0) return "mismatch at " + std::to_string(r.first_mismatch);
  if (r.received != bytes || !r.eof) {
    return "received " + std::to_string(r.received) + " of " + std::to_string(bytes);
  }
  const double secs = e2e::NowSeconds() - start;
  std::fprintf(stderr, "host side: %llu bytes each way in %.2f s (%.2f MB/s per direction)\n",
               static_cast<unsigned long long>(bytes), secs, bytes / secs / 1e6);
  return "ok";
}

class VsockDeviceE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spec_.guest_cid = 3;
    spec_.socket = dir_ + "/vm.vsock";
    spec_.uds_path = dir_ + "/vm.sock";
    auto reactor = io::UringReactor::Create();
    ASSERT_THAT(reactor, IsOk());
    reactor_ = *std::move(reactor);
    auto server = host_agent::VmServer::Create(spec_, *reactor_);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    loop_ = std::thread([this] { EXPECT_THAT(reactor_->Run(), IsOk()); });
  }

  void TearDown() override {
    if (loop_.joinable()) {
      reactor_->Stop();
      loop_.join();
    }
    server_.reset();
    (void)!::system(("rm -rf " + dir_).c_str());
  }

  // Runs |fn| on the reactor thread and returns its result.
  template <typename Fn>
  auto OnLoop(Fn fn) {
    std::promise<decltype(fn())> done;
    reactor_->Post([&] { done.set_value(fn()); });
    return done.get_future().get();
  }

  absl::StatusOr<std::unique_ptr<e2e::QemuGuest>> Boot(std::vector<std::string> steps,
                                                     std::string name) {
    e2e::GuestOptions options;
    options.name = std::move(name);
    options.extra_qemu_args = {"-chardev", "socket,id=vu,path=" + spec_.socket, "-device",
                               "vhost-user-vsock-pci,chardev=vu"};
    auto binary = e2e::Runfile("tests/e2e/guest/vsock_device_guest");
    if (!binary.ok()) return binary.status();
    if (absl::Status s = options.payload.SetHostBinary(*binary, std::move(steps)); !s.ok()) {
      return s;
    }
    return e2e::QemuGuest::Start(std::move(options));
  }

  std::string dir_;
  host_agent::VmSpec spec_;
  std::unique_ptr<io::UringReactor> reactor_;
  std::unique_ptr<host_agent::VmServer> server_;
  std::thread loop_;
};

TEST_F(VsockDeviceE2eTest, LinuxGuestTalksToTheHostBothWays) {
  UniqueFd server = ListenUnix(spec_.uds_path + "_5000");
  std::future<std::string> guest_to_host = std::async(std::launch::async, [&] {
    UniqueFd conn = AcceptWithin(server.get(), 120000);
    if (!conn.valid()) return std::string("no connection");
    return Exchange(conn.get(), kBytes, 102, 101);
  });
  VRPC_ASSERT_OK_AND_ASSIGN(
      auto guest, Boot({"client:5000:" + std::to_string(kBytes),
                        "server:6000:" + std::to_string(kBytes), "refused:5001"},
                       "device-e2e"));
  // (b) once the guest listens, reach it through the hybrid socket.
  VRPC_ASSERT_OK(guest->WaitForConsole("vrpc-listening 6000", absl::Seconds(180)));
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, spec_.uds_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(e2e::WriteFully(client.get(), "CONNECT 6000\n", 13), 0);
  char ok[8] = {};
  ASSERT_EQ(::recv(client.get(), ok, 8, MSG_WAITALL), 8);
  EXPECT_EQ(std::string(ok, 8), "OK 6000\n");
  EXPECT_EQ(Exchange(client.get(), kBytes, 201, 202), "ok");

  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult result, guest->Wait());
  EXPECT_EQ(result.exit_code, 0) << result.payload_output;
  EXPECT_THAT(result.payload_output, HasSubstr("PASS client:5000"));
  EXPECT_THAT(result.payload_output, HasSubstr("PASS server:6000"));
  EXPECT_THAT(result.payload_output, HasSubstr("PASS refused:5001"));
  EXPECT_EQ(guest_to_host.get(), "ok");
  const auto stats = OnLoop([&] { return server_->device().stats(); });
  EXPECT_GT(stats.zero_copy_bytes, kBytes);  // guest payload handed over in place
  EXPECT_FALSE(OnLoop([&] { return server_->device().broken(); }));
  std::fprintf(stderr, "guest reported:\n%s\n", result.payload_output.c_str());
}

TEST_F(VsockDeviceE2eTest, QemuKilledMidTransferThenANewVmIsServed) {
  UniqueFd server = ListenUnix(spec_.uds_path + "_5000");
  std::atomic<uint64_t> received{0};
  std::future<bool> first = std::async(std::launch::async, [&] {
    UniqueFd conn = AcceptWithin(server.get(), 120000);
    if (!conn.valid()) return false;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) return true;  // EOF or reset once the VM is gone
      received += static_cast<uint64_t>(n);
    }
  });
  VRPC_ASSERT_OK_AND_ASSIGN(auto guest, Boot({"flood:5000"}, "device-kill"));
  VRPC_ASSERT_OK(guest->WaitForConsole("vrpc-flooding 5000", absl::Seconds(180)));
  for (int i = 0; i < 600 && received < (1u << 20); ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_GE(received.load(), 1u << 20);
  guest->Kill();
  ASSERT_EQ(first.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the forwarded socket was not closed after the VM died";
  EXPECT_TRUE(first.get());
  for (int i = 0; i < 100 && OnLoop([&] { return server_->frontend_attached(); }); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_FALSE(OnLoop([&] { return server_->frontend_attached(); }));

  // A new VM against the same agent.
  std::future<std::string> second = std::async(std::launch::async, [&] {
    UniqueFd conn = AcceptWithin(server.get(), 120000);
    if (!conn.valid()) return std::string("no connection");
    return Exchange(conn.get(), 1 << 20, 102, 101);
  });
  VRPC_ASSERT_OK_AND_ASSIGN(auto again, Boot({"client:5000:1048576"}, "device-restart"));
  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult result, again->Wait());
  EXPECT_EQ(result.exit_code, 0) << result.payload_output;
  EXPECT_EQ(second.get(), "ok");
  EXPECT_EQ(OnLoop([&] { return server_->sessions(); }), 2);
}

}  // namespace
}  // namespace vrpc
