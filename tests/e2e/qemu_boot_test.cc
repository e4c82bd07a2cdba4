// Boots QEMU guests with the e2e harness and checks the harness itself: the
// payload's exit code and output, module loading, arguments/environment/
// files, extra QEMU arguments (a vhost-user chardev), killing QEMU mid-run
// and restarting, timeouts, and clear failures.
//
// Requires qemu-system-x86_64, a Debian guest kernel, busybox-static and
// kmod (tools/install_deps.sh). Fails (does not skip) when they are missing.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/initramfs.h"
#include "tests/e2e/harness/qemu_guest.h"

namespace vrpc {
namespace e2e {
namespace {

using ::testing::ContainerEq;
using ::testing::HasSubstr;

void PrintTimings(const std::string& what, const GuestResult& r) {
  std::cerr << "TIMING " << what << ": boot " << absl::FormatDuration(r.boot_time)
            << ", payload " << absl::FormatDuration(r.payload_time) << ", total "
            << absl::FormatDuration(r.total_time) << "\n";
}

// True if a process with |pid| exists and is a QEMU.
bool IsQemuProcess(pid_t pid) {
  absl::StatusOr<std::string> cmdline = ReadFileToString(absl::StrCat("/proc/", pid, "/cmdline"));
  return cmdline.ok() && cmdline->find("qemu-system") != std::string::npos;
}

class QemuBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Fail loudly (not skip) when CI forgot the QEMU dependencies.
    VRPC_ASSERT_OK(CheckGuestEnvironment());
  }
};

TEST_F(QemuBootTest, RunsShellPayloadAndLoadsModules) {
  GuestOptions opts;
  opts.name = "boot";
  opts.payload.SetShell(
      "cat /proc/modules; ls /sys/bus/pci/devices; echo cmdline: $(cat /proc/cmdline); exit 3");
  VRPC_ASSERT_OK_AND_ASSIGN(GuestResult r, RunGuest(opts));
  PrintTimings("boot+shell", r);
  EXPECT_EQ(r.exit_code, 3) << r.payload_output;
  EXPECT_TRUE(r.clean_poweroff);
  EXPECT_THAT(r.module_order, ContainerEq(DefaultGuestModules()));
  std::cerr << "module load order: " << absl::StrJoin(r.module_order, " ") << "\n";
  for (const std::string& m : DefaultGuestModules()) {
    EXPECT_THAT(r.payload_output, HasSubstr(m + " ")) << "module " << m << " not loaded";
  }
  EXPECT_THAT(r.payload_output, HasSubstr("vmw_vsock_virtio_transport "));
  EXPECT_THAT(r.payload_output, HasSubstr("uio_pci_generic "));
  EXPECT_THAT(r.payload_output, HasSubstr("console=ttyS0"));
  // The payload's output is exact: no markers, no trailing extra newline.
  EXPECT_THAT(r.payload_output, ::testing::Not(HasSubstr("VRPC-E2E")));
  EXPECT_EQ(r.payload_output.back(), '\n');
  EXPECT_THAT(r.payload_output, ::testing::Not(::testing::EndsWith("\n\n")));
  EXPECT_THAT(r.dmesg, HasSubstr("Linux version"));
  EXPECT_THAT(r.dmesg, HasSubstr("NET: Registered PF_VSOCK protocol family"));
  EXPECT_GT(r.boot_time, absl::ZeroDuration());
  VRPC_ASSERT_OK_AND_ASSIGN(std::string log, ReadFileToString(r.console_log_path));
  EXPECT_THAT(log, HasSubstr("memory-backend-memfd,id=mem,size=256M,share=on"));
  EXPECT_THAT(log, HasSubstr("VRPC-E2E-EXIT 3"));
}

TEST_F(QemuBootTest, RunsStaticHostBinaryWithArgsEnvAndFiles) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::string probe, Runfile("tests/e2e/guest/guest_probe"));
  GuestOptions opts;
  opts.name = "probe";
  VRPC_ASSERT_OK(opts.payload.SetHostBinary(
      probe, {"--exit=7", "two words", "it's \"quoted\" $HOME `x`", "--env=VRPC_GREETING",
              "--cat=/payload/data.txt", "--print=no newline at end"}));
  opts.payload.env.push_back({"VRPC_GREETING", "hello guest"});
  opts.payload.files.push_back(GuestFile{"/payload/data.txt", "", "line one\nline two\n", 0});
  VRPC_ASSERT_OK_AND_ASSIGN(GuestResult r, RunGuest(opts));
  PrintTimings("boot+probe", r);
  EXPECT_EQ(r.exit_code, 7) << r.payload_output;
  EXPECT_THAT(r.payload_output, HasSubstr("argv[0]=/payload/guest_probe\n"));
  EXPECT_THAT(r.payload_output, HasSubstr("argv[2]=two words\n"));
  EXPECT_THAT(r.payload_output, HasSubstr("argv[3]=it's \"quoted\" $HOME `x`\n"));
  EXPECT_THAT(r.payload_output, HasSubstr("env VRPC_GREETING=hello guest\n"));
  EXPECT_THAT(r.payload_output, HasSubstr("--- /payload/data.txt ---\nline one\nline two\n"));
  EXPECT_THAT(r.payload_output, ::testing::EndsWith("no newline at end\n"));
}

TEST_F(QemuBootTest, RejectsDynamicallyLinkedPayload) {
  GuestPayload payload;
  EXPECT_THAT(payload.SetHostBinary("/proc/self/exe"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vrpc_guest_binary")));
  EXPECT_THAT(payload.SetHostBinary("/nonexistent/payload"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QemuBootTest, MissingKernelFailsClearly) {
  GuestOptions opts;
  opts.payload.SetShell("true");
  opts.kernel_version = "0.0.0-vrpc-no-such-kernel";
  EXPECT_THAT(QemuGuest::Start(opts),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("/boot/vmlinuz-0.0.0-vrpc-no-such-kernel")));
}

TEST_F(QemuBootTest, MissingModuleFailsClearly) {
  GuestOptions opts;
  opts.payload.SetShell("true");
  opts.modules.push_back("vrpc_no_such_module");
  EXPECT_THAT(QemuGuest::Start(opts),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("vrpc_no_such_module")));
}

TEST_F(QemuBootTest, QemuStartupErrorIsReported) {
  GuestOptions opts;
  opts.name = "bad-device";
  opts.payload.SetShell("true");
  opts.extra_qemu_args = {"-device", "vrpc-no-such-device"};
  absl::StatusOr<GuestResult> r = RunGuest(opts);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInternal, HasSubstr("vrpc-no-such-device")));
}

TEST_F(QemuBootTest, TimeoutKillsQemuAndReportsConsoleTail) {
  GuestOptions opts;
  opts.name = "timeout";
  opts.payload.SetShell("sleep 600");
  opts.timeout = absl::Seconds(3);
  const absl::Time start = absl::Now();
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<QemuGuest> guest, QemuGuest::Start(opts));
  const pid_t pid = guest->pid();
  absl::StatusOr<GuestResult> r = guest->Wait();
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDeadlineExceeded,
                          HasSubstr("QEMU was killed")));
  EXPECT_THAT(r.status().message(), HasSubstr("full console log: "));
  EXPECT_FALSE(guest->running());
  EXPECT_FALSE(IsQemuProcess(pid));
  // Scaled timeouts aside, the kill must be prompt.
  if (getenv("VRPC_E2E_TIMEOUT_SCALE") == nullptr) {
    EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  }
}

TEST_F(QemuBootTest, KillMidRunAndRestart) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::string probe, Runfile("tests/e2e/guest/guest_probe"));
  GuestOptions opts;
  opts.name = "kill";
  VRPC_ASSERT_OK(opts.payload.SetHostBinary(probe, {"--print=READY-TO-BE-KILLED", "--sleep=600"}));

  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<QemuGuest> first, QemuGuest::Start(opts));
  VRPC_ASSERT_OK(first->WaitForConsole("READY-TO-BE-KILLED", absl::Seconds(120)));
  const pid_t pid = first->pid();
  EXPECT_TRUE(first->running());
  EXPECT_TRUE(IsQemuProcess(pid));
  first->Kill();
  EXPECT_FALSE(first->running());
  EXPECT_FALSE(IsQemuProcess(pid));
  EXPECT_THAT(first->Wait(), StatusIs(absl::StatusCode::kAborted, HasSubstr("Kill()")));
  first->Kill();  // idempotent

  // Same options (same devices, same sockets in a real test), new guest.
  VRPC_ASSERT_OK(opts.payload.SetHostBinary(probe, {"--print=SECOND-BOOT", "--exit=0"}));
  opts.name = "restart";
  VRPC_ASSERT_OK_AND_ASSIGN(GuestResult r, RunGuest(opts));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.payload_output, HasSubstr("SECOND-BOOT"));
}

TEST_F(QemuBootTest, DestructorKillsRunningGuest) {
  GuestOptions opts;
  opts.name = "destructor";
  opts.payload.SetShell("sleep 600");
  pid_t pid;
  {
    VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<QemuGuest> guest, QemuGuest::Start(opts));
    pid = guest->pid();
    EXPECT_TRUE(IsQemuProcess(pid));
  }
  EXPECT_FALSE(IsQemuProcess(pid));
}

// The attach path later tests use for vrpc's vhost-user vsock device: QEMU
// (with shared memfd RAM) connects to the Unix socket and starts the
// vhost-user handshake with GET_FEATURES. With no real back-end behind it, the
// test then kills QEMU (it would wait for the reply forever).
TEST_F(QemuBootTest, VhostUserVsockDeviceConnectsToSocket) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::string dir, MakeSocketDir());
  const std::string sock_path = dir + "/vu.sock";
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid()) << strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock_path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << strerror(errno);
  ASSERT_EQ(listen(listener.get(), 1), 0);

  GuestOptions opts;
  opts.name = "vhost-user";
  opts.payload.SetShell("sleep 600");
  opts.extra_qemu_args = {"-chardev", "socket,id=vu,path=" + sock_path, "-device",
                          "vhost-user-vsock-pci,chardev=vu"};
  VRPC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<QemuGuest> guest, QemuGuest::Start(opts));

  pollfd pfd{listener.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 60000), 1) << "QEMU did not connect to " << sock_path;
  UniqueFd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid()) << strerror(errno);
  // vhost-user header: u32 request, u32 flags, u32 size (native endian).
  uint32_t header[3] = {0, 0, 0};
  size_t got = 0;
  while (got < sizeof(header)) {
    pfd = {conn.get(), POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 60000), 1) << "no vhost-user message from QEMU";
    ssize_t n = read(conn.get(), reinterpret_cast<char*>(header) + got, sizeof(header) - got);
    ASSERT_GT(n, 0) << "QEMU closed the socket";
    got += static_cast<size_t>(n);
  }
  EXPECT_EQ(header[0], 1u) << "expected VHOST_USER_GET_FEATURES";
  EXPECT_EQ(header[1], 0x1u) << "expected flags = version 1";
  EXPECT_EQ(header[2], 0u);
  EXPECT_TRUE(guest->running());
  guest->Kill();
  EXPECT_THAT(guest->Wait(), StatusIs(absl::StatusCode::kAborted));
  RemoveTree(dir);
}

}  // namespace
}  // namespace e2e
}  // namespace vrpc
