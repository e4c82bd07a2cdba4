// End to end: vrpc's userspace virtio-vsock guest driver over UioBus, in a
// TCG guest whose vsock PCI function (QEMU's vhost-user-vsock-pci, served by
// vrpc's vhost-user device -- the host agent's VmServer, in this process)
// has no kernel driver: the guest loads only uio and uio_pci_generic, and
// tests/e2e/guest/uio_vsock_guest binds the function, reserves nothing
// itself (hugepages=N on the kernel command line), and runs VsockDriver:
//   (a) guest -> host: it connects to host port 5000 (served here on
//       <uds>_5000), sends kBytes of the probe pattern, and verifies the
//       echo; this side verifies the pattern while echoing;
//   (b) host -> guest: this side connects with "CONNECT 6000\n", sends
//       kBytes, and verifies the guest's echo;
// in each of the driver's notification modes (INTx interrupts, polling,
// adaptive).
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "core/io/uring_reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/device/vm_server.h"
#include "transport_vsock/driver/probe_echo.h"
#include "tests/e2e/guest/stream_util.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/qemu_guest.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Contains;

constexpr uint64_t kBytes = 4 << 20;

UniqueFd ListenUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  return fd;
}

// Echoes |fd| until EOF, checking that what arrives is the probe pattern.
std::string EchoAndVerify(int fd) {
  std::vector<uint8_t> buf(64 << 10);
  uint64_t offset = 0;
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) return "read: " + e2e::ErrnoString(errno);
    if (n == 0) break;
    if (vsock::ProbePatternMismatches(offset, buf.data(), static_cast<size_t>(n)) != 0) {
      return "pattern mismatch near offset " + std::to_string(offset);
    }
    offset += static_cast<uint64_t>(n);
    if (e2e::WriteFully(fd, buf.data(), static_cast<size_t>(n)) != 0) return "echo write failed";
  }
  ::shutdown(fd, SHUT_WR);
  return offset == kBytes ? "ok" : "received " + std::to_string(offset) + " bytes";
}

// Sends kBytes of the pattern (then SHUT_WR) and verifies the echo.
std::string SendAndVerifyEcho(int fd) {
  std::thread sender([fd] {
    std::vector<uint8_t> buf(64 << 10);
    for (uint64_t off = 0; off < kBytes;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), kBytes - off));
      vsock::ProbePatternFill(off, buf.data(), n);
      if (e2e::WriteFully(fd, buf.data(), n) != 0) break;
      off += n;
    }
    ::shutdown(fd, SHUT_WR);
  });
  std::vector<uint8_t> buf(64 << 10);
  uint64_t offset = 0;
  std::string result = "ok";
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    if (vsock::ProbePatternMismatches(offset, buf.data(), static_cast<size_t>(n)) != 0) {
      result = "echo mismatch near offset " + std::to_string(offset);
    }
    offset += static_cast<uint64_t>(n);
  }
  sender.join();
  if (result == "ok" && offset != kBytes) result = "echoed " + std::to_string(offset) + " bytes";
  return result;
}

class UioVsockE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-uio-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spec_.guest_cid = 3;
    spec_.socket = dir_ + "/vm.vsock";
    spec_.uds_path = dir_ + "/vm.sock";
    auto reactor = io::UringReactor::Create();
    ASSERT_THAT(reactor, IsOk());
    reactor_ = *std::move(reactor);
    auto server = vsock::VmServer::Create(spec_, *reactor_);
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

  std::string dir_;
  vsock::VmSpec spec_;
  std::unique_ptr<io::UringReactor> reactor_;
  std::unique_ptr<vsock::VmServer> server_;
  std::thread loop_;
};

class UioVsockModeTest : public UioVsockE2eTest,
                         public ::testing::WithParamInterface<const char*> {};

TEST_P(UioVsockModeTest, UserspaceDriverOverUioTalksToTheHostBothWays) {
  const std::string mode = GetParam();
  UniqueFd listener = ListenUnix(spec_.uds_path + "_5000");
  std::future<std::string> guest_to_host = std::async(std::launch::async, [&] {
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 240000) != 1) return std::string("no connection");
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) return std::string("accept failed");
    return EchoAndVerify(conn.get());
  });

  e2e::GuestOptions options;
  options.name = "uio-e2e-" + mode;
  // No virtio_pci, no kernel vsock: only UIO drives the function.
  options.modules = {"uio", "uio_pci_generic"};
  options.memory_mb = 512;
  options.extra_kernel_cmdline = "hugepages=48";
  options.timeout = absl::Seconds(240);
  options.extra_qemu_args = {"-chardev", "socket,id=vu,path=" + spec_.socket, "-device",
                             "vhost-user-vsock-pci,chardev=vu"};
  VRPC_ASSERT_OK_AND_ASSIGN(std::string binary,
                            e2e::Runfile("tests/e2e/guest/uio_vsock_guest"));
  VRPC_ASSERT_OK(options.payload.SetHostBinary(
      binary, {"--mode=" + mode, "5000", std::to_string(kBytes), "6000"}));
  VRPC_ASSERT_OK_AND_ASSIGN(auto guest, e2e::QemuGuest::Start(std::move(options)));

  VRPC_ASSERT_OK(guest->WaitForConsole("vrpc-uio-listening 6000", absl::Seconds(240)));
  EXPECT_EQ(guest_to_host.get(), "ok");
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, spec_.uds_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(e2e::WriteFully(client.get(), "CONNECT 6000\n", 13), 0);
  char ok[8] = {};
  ASSERT_EQ(::recv(client.get(), ok, 8, MSG_WAITALL), 8);
  EXPECT_EQ(std::string(ok, 8), "OK 6000\n");
  EXPECT_EQ(SendAndVerifyEcho(client.get()), "ok");
  client.Reset();

  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult result, guest->Wait());
  EXPECT_EQ(result.exit_code, 0) << result.payload_output;
  EXPECT_THAT(result.payload_output, HasSubstr("PASS connect:5000"));
  EXPECT_THAT(result.payload_output, HasSubstr("PASS serve:6000"));
  EXPECT_THAT(result.payload_output, HasSubstr("uio_vsock_guest: bound, /dev/uio"));
  if (mode == "interrupt") {
    EXPECT_THAT(result.payload_output, Not(HasSubstr(" 0 interrupts")));  // INTx works
    EXPECT_THAT(result.payload_output, HasSubstr(" 0 polls"));
  } else {
    EXPECT_THAT(result.payload_output, Not(HasSubstr(" 0 polls")));
  }
  EXPECT_THAT(result.payload_output, HasSubstr(" 0 device losses"));
  EXPECT_THAT(result.module_order, Not(Contains("vmw_vsock_virtio_transport")));
  EXPECT_THAT(result.module_order, Not(Contains("virtio_pci")));
  EXPECT_THAT(result.module_order, Contains("uio_pci_generic"));
  std::fprintf(stderr, "guest reported:\n%s\n", result.payload_output.c_str());
}

INSTANTIATE_TEST_SUITE_P(NotifyModes, UioVsockModeTest,
                         ::testing::Values("interrupt", "poll", "adaptive"));

}  // namespace
}  // namespace vrpc
