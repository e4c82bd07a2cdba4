// File: tests/e2e/harness/qemu_guest.h
//
// QemuGuest boots a throw-away Linux guest under QEMU (TCG) that runs one test
// payload and powers off, for vrpc's end-to-end tests (testing ladder rungs
// 4-5). Typical use in a gtest:
//
//   using vrpc::e2e::GuestOptions;
//   GuestOptions opts;
//   VRPC_ASSERT_OK_AND_ASSIGN(std::string bin,
//                             vrpc::e2e::Runfile("tests/e2e/guest/vsock_selftest"));
//   VRPC_ASSERT_OK(opts.payload.SetHostBinary(bin, {"--bytes=1048576"}));
//   VRPC_ASSERT_OK_AND_ASSIGN(vrpc::e2e::GuestResult r, vrpc::e2e::RunGuest(opts));
//   EXPECT_EQ(r.exit_code, 0) << r.payload_output;
//
// Attaching vrpc's vhost-user vsock device (the host agent listening on SOCK):
//
//   opts.extra_qemu_args = {"-chardev", "socket,id=vu,path=" + sock,
//                           "-device", "vhost-user-vsock-pci,chardev=vu"};
//
// (shared guest RAM, `-object memory-backend-memfd,...,share=on -machine
// q35,memory-backend=mem`, is always configured.)
//
// The guest's serial console is captured line by line into GuestResult, a log
// file (console_log_path(), under $TEST_UNDECLARED_OUTPUTS_DIR in Bazel) and,
// unless disabled, the test's stderr. QEMU is killed (SIGKILL) on every path
// that does not end with the guest powering itself off: timeout, Kill(),
// destruction of the QemuGuest, and death of the test process
// (PR_SET_PDEATHSIG).
#ifndef VRPC_TESTS_E2E_HARNESS_QEMU_GUEST_H_
#define VRPC_TESTS_E2E_HARNESS_QEMU_GUEST_H_

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/e2e/harness/guest_kernel.h"
#include "tests/e2e/harness/initramfs.h"

namespace vrpc {
namespace e2e {

// The program the guest runs, and what it needs.
struct GuestPayload {
  // Command line; argv[0] is a path *in the guest*. Set it directly for
  // programs already in the initramfs (busybox applets), or use the helpers.
  std::vector<std::string> argv;
  // Extra files for the guest (data, helper binaries).
  std::vector<GuestFile> files;
  // Extra environment variables.
  std::vector<std::pair<std::string, std::string>> env;

  // Copies the host program |host_path| to /payload/<basename> in the guest
  // and runs it with |args|. The program must be statically linked (use
  // vrpc_guest_binary from //tests/e2e:guest_binary.bzl): returns
  // kInvalidArgument for a dynamically linked program, kNotFound if it does
  // not exist.
  [[nodiscard]] absl::Status SetHostBinary(const std::string& host_path,
                                           std::vector<std::string> args = {});
  // Runs |script| with the guest's busybox sh (`/bin/sh -c script`).
  void SetShell(std::string script);
};

// How to boot the guest.
struct GuestOptions {
  GuestPayload payload;
  // Modules to load before the payload (dependencies are added).
  std::vector<std::string> modules = DefaultGuestModules();
  // Appended to QEMU's command line, e.g. {"-chardev", "socket,id=vu,path=S",
  // "-device", "vhost-user-vsock-pci,chardev=vu"}.
  std::vector<std::string> extra_qemu_args;
  // Guest RAM (MiB); also the size of the shared memfd backend.
  int memory_mb = 256;
  int cpus = 1;
  // Appended to the kernel command line.
  std::string extra_kernel_cmdline;
  // Kernel console log level (kernel `loglevel=`): messages more important
  // than this reach the console live; 4 shows errors and worse. The complete
  // kernel log is always dumped after the payload (GuestResult::dmesg). Use 8
  // to watch the whole boot; $VRPC_E2E_KERNEL_LOGLEVEL overrides it (e.g.
  // `bazel test --test_env=VRPC_E2E_KERNEL_LOGLEVEL=8 ...`).
  int kernel_loglevel = 4;
  // From Start() until the exit marker. Multiplied by
  // $VRPC_E2E_TIMEOUT_SCALE if set (e.g. 3 on a slow CI machine).
  absl::Duration timeout = absl::Seconds(120);
  // Names the console log file and prefixes echoed lines.
  std::string name = "guest";
  // Copy every console line to stderr as "[name] line" (it then lands in
  // bazel-testlogs/.../test.log).
  bool echo_console = true;
  // Called on the harness's reader thread for each console line (without
  // the line terminator). Must not call back into the QemuGuest.
  std::function<void(absl::string_view line)> on_console_line;
  // Guest kernel version; empty: $VRPC_E2E_KERNEL_VERSION or the newest one
  // installed (see FindGuestKernel).
  std::string kernel_version;
  // Boot the uncompressed kernel through QEMU's PVH entry instead of the
  // bzImage (see ExtractPvhKernel): ~3 s instead of ~6 s to the payload under
  // TCG. The vmlinux is extracted once per process. Falls back to the
  // bzImage (with a note on stderr) if that is impossible; $VRPC_E2E_PVH=0
  // turns it off everywhere.
  bool pvh_boot = true;
};

// Outcome of a guest run that reached the payload's end.
struct GuestResult {
  // The payload's exit status as the guest shell reports it (128 + N if it
  // died from signal N).
  int exit_code = -1;
  // The payload's stdout+stderr (as seen on the serial console; "\r\n" is
  // turned into "\n"). Kernel messages above kernel_loglevel may interleave.
  std::string payload_output;
  // The guest kernel log, dumped by /init after the payload.
  std::string dmesg;
  // The whole serial console.
  std::string console;
  // QEMU's stderr.
  std::string qemu_stderr;
  std::string console_log_path;
  // Modules in the order /init loaded them.
  std::vector<std::string> module_order;
  // Host wall-clock time from QEMU start to the payload start, of the
  // payload itself, and in total (until QEMU exited).
  absl::Duration boot_time;
  absl::Duration payload_time;
  absl::Duration total_time;
  // False if QEMU had to be killed after the exit marker because it did not
  // power off by itself within a grace period.
  bool clean_poweroff = false;
};

// One running guest. Construct with Start(); destroy to kill QEMU. All
// methods are thread-safe (e.g. Kill() from one thread while another is in
// Wait()).
class QemuGuest {
 public:
  // Builds the initramfs and starts QEMU. Returns kFailedPrecondition (with
  // a message naming the missing piece and tools/install_deps.sh) if QEMU,
  // the guest kernel, busybox-static or modinfo are missing, and other
  // errors from BuildInitramfs. The timeout starts now.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<QemuGuest>> Start(
      GuestOptions options);

  // Kills QEMU if it still runs and waits for it to be reaped.
  ~QemuGuest();

  QemuGuest(const QemuGuest&) = delete;
  QemuGuest& operator=(const QemuGuest&) = delete;

  // Waits until the guest printed its exit marker and QEMU exited (killing
  // it if it does not power off within 30 s of the marker). Returns the
  // result even if the payload failed (check exit_code). Errors, each with
  // the tail of the console and QEMU's stderr in the message:
  //   kDeadlineExceeded  the timeout passed first (QEMU has been killed);
  //   kAborted           Kill() was called;
  //   kInternal          /init failed (e.g. insmod) or QEMU exited/crashed
  //                      before the marker (e.g. bad -device arguments).
  // May be called more than once; later calls return the same outcome.
  [[nodiscard]] absl::StatusOr<GuestResult> Wait();

  // Waits until the console contains |needle| (anywhere, since boot), e.g. a
  // line the payload prints when it is ready. Returns kDeadlineExceeded after
  // |timeout| (QEMU keeps running) and kUnavailable if QEMU exited first.
  [[nodiscard]] absl::Status WaitForConsole(absl::string_view needle,
                                            absl::Duration timeout);

  // Kills QEMU with SIGKILL (as if the VM crashed) and waits until it is
  // reaped. Idempotent; a no-op once QEMU exited.
  void Kill();

  // True until QEMU has exited and been reaped.
  bool running() const;
  // QEMU's pid (stays valid as a number after exit; do not signal it).
  pid_t pid() const { return pid_; }
  // A snapshot of the console so far.
  std::string console() const;
  const std::string& console_log_path() const { return log_path_; }
  // The QEMU command line used.
  const std::vector<std::string>& qemu_command() const { return command_; }
  const std::vector<std::string>& module_order() const { return module_order_; }

 private:
  QemuGuest() = default;

  absl::Status Launch();
  void ReaderLoop();
  void HandleLine(std::string line);
  std::string Tail(size_t lines) const;  // requires mu_
  absl::Status Failure(absl::StatusCode code, absl::string_view what) const;  // requires mu_

  GuestOptions options_;
  std::vector<std::string> command_;
  std::vector<std::string> module_order_;
  std::string work_dir_;
  std::string log_path_;
  absl::Time start_time_;
  absl::Time deadline_;
  pid_t pid_ = -1;
  int out_fd_ = -1;  // QEMU stdout (serial console), owned by the reader
  int err_fd_ = -1;  // QEMU stderr, owned by the reader
  int log_fd_ = -1;
  std::thread reader_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string console_;
  std::string qemu_stderr_;
  std::string partial_line_;
  bool launched_ = false;   // fork/exec outcome known
  absl::Status launch_status_;
  bool reaped_ = false;
  int wait_status_ = 0;
  bool killed_by_user_ = false;
  bool timed_out_ = false;
  bool killed_after_marker_ = false;
  // Parsed progress.
  bool payload_begun_ = false;
  bool payload_ended_ = false;
  bool in_dmesg_ = false;
  bool have_exit_ = false;
  int exit_code_ = -1;
  std::string init_error_;
  std::string payload_output_;
  std::string dmesg_;
  absl::Time payload_begin_time_;
  absl::Time payload_end_time_;
  absl::Time exit_time_;
};

// The QEMU command line QemuGuest::Start() runs for |options| (qemu binary,
// kernel image -- bzImage or PVH vmlinux -- and initramfs given). Exposed for
// tools that print it.
std::vector<std::string> QemuCommandLine(const std::string& qemu, const GuestOptions& options,
                                         const std::string& kernel_image,
                                         const std::string& initramfs_path);

// Start() + Wait().
[[nodiscard]] absl::StatusOr<GuestResult> RunGuest(GuestOptions options);

// Checks that the host can run guests (QEMU, guest kernel, static busybox,
// modinfo) without booting one. Returns kFailedPrecondition naming what is
// missing.
[[nodiscard]] absl::Status CheckGuestEnvironment();

}  // namespace e2e
}  // namespace vrpc

#endif  // VRPC_TESTS_E2E_HARNESS_QEMU_GUEST_H_
