#include "tests/e2e/harness/qemu_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/status_macros.h"
#include "tests/e2e/harness/guest_kernel.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/initramfs.h"

extern char** environ;

namespace vrpc {
namespace e2e {
namespace {

// How long QEMU may take to power off after the exit marker.
constexpr absl::Duration kPoweroffGrace = absl::Seconds(30);
// Console lines included in error messages.
constexpr size_t kTailLines = 40;

std::atomic<int> g_guest_counter{0};

double TimeoutScale() {
  const char* env = getenv("VRPC_E2E_TIMEOUT_SCALE");
  double scale = 1.0;
  if (env != nullptr && absl::SimpleAtod(env, &scale) && scale > 0) return scale;
  return 1.0;
}

// Finds |marker| in |line| as a whole word (followed by a space or the end
// of the line). On success stores the text after it (without the space).
bool FindMarker(absl::string_view line, absl::string_view marker,
                absl::string_view* rest = nullptr) {
  size_t pos = 0;
  while ((pos = line.find(marker, pos)) != absl::string_view::npos) {
    size_t end = pos + marker.size();
    if (end == line.size() || line[end] == ' ') {
      if (rest != nullptr) {
        *rest = end == line.size() ? absl::string_view() : line.substr(end + 1);
      }
      return true;
    }
    pos = end;
  }
  return false;
}

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Removes terminal escape sequences (SeaBIOS and the kernel's early console
// clear the screen: ESC c, ESC [ ... letter), carriage returns and NULs.
std::string StripTerminalControl(absl::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\x1b') {
      if (i + 1 < line.size() && line[i + 1] == '[') {
        i += 2;
        while (i < line.size() && !(line[i] >= 0x40 && line[i] <= 0x7e)) ++i;
      } else {
        ++i;  // two-character sequence such as ESC c
      }
      continue;
    }
    if (c == '\r' || c == '\0') continue;
    out.push_back(c);
  }
  return out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The PVH vmlinux of |kernel|, extracted at most once per process into a
// cache directory: $TEST_TMPDIR/vrpc-e2e-kernel under Bazel (hermetic, cleaned
// by Bazel), else ${XDG_CACHE_HOME:-$HOME/.cache}/vrpc-e2e-kernel (or
// /tmp/vrpc-e2e-kernel-<uid>), shared between runs. The subdirectory is keyed
// by the bzImage's size and mtime, so a reinstalled kernel with the same
// version string is extracted again.
absl::StatusOr<std::string> CachedPvhKernel(const GuestKernel& kernel) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, absl::StatusOr<std::string>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(kernel.version);
  if (it != cache->end()) return it->second;

  std::string base;
  if (const char* t = getenv("TEST_TMPDIR"); t != nullptr && *t != '\0') {
    base = absl::StrCat(t, "/vrpc-e2e-kernel");
  } else if (const char* x = getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
    base = absl::StrCat(x, "/vrpc-e2e-kernel");
  } else if (const char* h = getenv("HOME"); h != nullptr && *h == '/' &&
                                              access(h, W_OK) == 0) {
    base = absl::StrCat(h, "/.cache/vrpc-e2e-kernel");
  } else {
    base = absl::StrCat("/tmp/vrpc-e2e-kernel-", getuid());
  }
  struct stat st;
  if (stat(kernel.image.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat ", kernel.image));
  }
  const std::string dir = absl::StrCat(base, "/", kernel.version, "-", st.st_size, "-",
                                       static_cast<int64_t>(st.st_mtime));
  for (const std::string& d : {base.substr(0, base.rfind('/')), base, dir}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", d));
    }
  }
  absl::StatusOr<std::string> path = ExtractPvhKernel(kernel, dir);
  cache->emplace(kernel.version, path);
  return path;
}

}  // namespace

absl::Status GuestPayload::SetHostBinary(const std::string& host_path,
                                         std::vector<std::string> args) {
  if (access(host_path.c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("payload ", host_path, " does not exist"));
  }
  VRPC_ASSIGN_OR_RETURN(bool is_static, IsStaticElf(host_path));
  if (!is_static) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload ", host_path,
        " is dynamically linked; the guest has no shared libraries. Build it "
        "with vrpc_guest_binary (//tests/e2e:guest_binary.bzl)."));
  }
  std::string guest_path = "/payload/" + Basename(host_path);
  // Calling this again (e.g. to change the arguments) replaces the file.
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const GuestFile& f) { return f.guest_path == guest_path; }),
              files.end());
  files.push_back(GuestFile{guest_path, host_path, "", 0755});
  argv.clear();
  argv.push_back(guest_path);
  for (std::string& a : args) argv.push_back(std::move(a));
  return absl::OkStatus();
}

void GuestPayload::SetShell(std::string script) {
  argv = {"/bin/sh", "-c", std::move(script)};
}

absl::Status CheckGuestEnvironment() {
  VRPC_RETURN_IF_ERROR(FindTool("qemu-system-x86_64", "VRPC_E2E_QEMU").status());
  VRPC_RETURN_IF_ERROR(FindGuestKernel().status());
  VRPC_ASSIGN_OR_RETURN(std::string busybox, FindTool("busybox", "VRPC_E2E_BUSYBOX"));
  VRPC_ASSIGN_OR_RETURN(bool is_static, IsStaticElf(busybox));
  if (!is_static) {
    return absl::FailedPreconditionError(
        absl::StrCat(busybox, " is not static: install busybox-static"));
  }
  VRPC_RETURN_IF_ERROR(FindTool("modinfo").status());
  return absl::OkStatus();
}

std::vector<std::string> QemuCommandLine(const std::string& qemu, const GuestOptions& options,
                                         const std::string& kernel_image,
                                         const std::string& initramfs_path) {
  const std::string mem = absl::StrCat(options.memory_mb, "M");
  int loglevel = options.kernel_loglevel;
  if (const char* env = getenv("VRPC_E2E_KERNEL_LOGLEVEL"); env != nullptr) {
    int value;
    if (absl::SimpleAtoi(env, &value)) loglevel = value;
  }
  std::string cmdline =
      absl::StrCat("console=ttyS0,115200 panic=-1 rdinit=/init loglevel=", loglevel);
  if (!options.extra_kernel_cmdline.empty()) {
    absl::StrAppend(&cmdline, " ", options.extra_kernel_cmdline);
  }
  std::vector<std::string> command = {
      qemu,
      "-name", absl::StrCat("vrpc-e2e-", options.name),
      "-accel", "tcg",
      "-nographic",
      "-no-reboot",
      "-m", mem,
      "-smp", absl::StrCat(options.cpus),
      // Shared, fd-backed guest RAM: a vhost-user back-end maps it.
      "-object", absl::StrCat("memory-backend-memfd,id=mem,size=", mem, ",share=on"),
      "-machine", "q35,memory-backend=mem",
      // No default NIC (q35 would add an e1000e with user networking).
      "-nic", "none",
      "-kernel", kernel_image,
      "-initrd", initramfs_path,
      "-append", cmdline,
  };
  for (const std::string& a : options.extra_qemu_args) command.push_back(a);
  return command;
}

absl::StatusOr<std::unique_ptr<QemuGuest>> QemuGuest::Start(GuestOptions options) {
  if (options.payload.argv.empty()) {
    return absl::InvalidArgumentError(
        "GuestOptions.payload has no command (use SetHostBinary or SetShell)");
  }
  if (options.memory_mb < 64 || options.cpus < 1) {
    return absl::InvalidArgumentError("memory_mb must be >= 64 and cpus >= 1");
  }
  VRPC_ASSIGN_OR_RETURN(std::string qemu,
                        FindTool("qemu-system-x86_64", "VRPC_E2E_QEMU"));
  VRPC_ASSIGN_OR_RETURN(GuestKernel kernel, FindGuestKernel(options.kernel_version));

  std::unique_ptr<QemuGuest> guest(new QemuGuest());
  const int seq = ++g_guest_counter;
  VRPC_ASSIGN_OR_RETURN(guest->work_dir_,
                        MakeTempDir(absl::StrCat("vrpc-e2e-", options.name, "-")));

  InitramfsSpec spec;
  spec.kernel = kernel;
  spec.modules = options.modules;
  spec.argv = options.payload.argv;
  spec.env = options.payload.env;
  spec.files = options.payload.files;
  VRPC_ASSIGN_OR_RETURN(InitramfsInfo initramfs,
                        BuildInitramfs(spec, guest->work_dir_ + "/initramfs.cpio"));
  guest->module_order_ = initramfs.module_order;

  std::string kernel_image = kernel.image;
  const char* pvh_env = getenv("VRPC_E2E_PVH");
  if (options.pvh_boot && (pvh_env == nullptr || std::string(pvh_env) != "0")) {
    absl::StatusOr<std::string> vmlinux = CachedPvhKernel(kernel);
    if (vmlinux.ok()) {
      kernel_image = *vmlinux;
    } else {
      WriteAll(2, absl::StrCat("[", options.name, "] note: booting the bzImage: ",
                               vmlinux.status().ToString(), "\n"));
    }
  }
  guest->command_ = QemuCommandLine(qemu, options, kernel_image, initramfs.path);

  guest->log_path_ = absl::StrCat(TestOutputDir(), "/", options.name, "-", seq,
                                  ".console.log");
  guest->log_fd_ = open(guest->log_path_.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (guest->log_fd_ < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("create ", guest->log_path_));
  }
  std::vector<std::string> quoted;
  for (const std::string& a : guest->command_) quoted.push_back(ShellQuote(a));
  WriteAll(guest->log_fd_,
           absl::StrCat("# vrpc e2e guest '", options.name, "', kernel ",
                        kernel.version, "\n# modules: ",
                        absl::StrJoin(guest->module_order_, " "), "\n# ",
                        absl::StrJoin(quoted, " "), "\n"));

  const absl::Duration timeout = options.timeout * TimeoutScale();
  guest->options_ = std::move(options);
  guest->start_time_ = absl::Now();
  guest->deadline_ = guest->start_time_ + timeout;
  VRPC_RETURN_IF_ERROR(guest->Launch());
  return guest;
}

absl::Status QemuGuest::Launch() {
  // QEMU is forked by the reader thread: PR_SET_PDEATHSIG fires when the
  // *thread* that forked the child exits, and the reader lives until QEMU
  // has been reaped. If the whole test process dies, QEMU gets SIGKILL.
  reader_ = std::thread([this] { ReaderLoop(); });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return launched_; });
  return launch_status_;
}

void QemuGuest::ReaderLoop() {
  auto fail_launch = [this](absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    launch_status_ = std::move(status);
    launched_ = true;
    reaped_ = true;
    cv_.notify_all();
  };
  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return fail_launch(absl::ErrnoToStatus(errno, "pipe2"));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return fail_launch(absl::ErrnoToStatus(errno, "pipe2"));
  }
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return fail_launch(absl::ErrnoToStatus(errno, "pipe2"));
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

  std::vector<char*> argv;
  for (const std::string& a : command_) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execve(argv[0], argv.data(), environ);
    int err = errno;
    ssize_t ignored = write(exec_pipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  int fork_errno = errno;
  if (devnull >= 0) close(devnull);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);
  if (pid < 0) {
    for (int fd : {out_pipe[0], err_pipe[0], exec_pipe[0]}) close(fd);
    return fail_launch(absl::ErrnoToStatus(fork_errno, "fork"));
  }
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n > 0) {
    waitpid(pid, nullptr, 0);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return fail_launch(absl::ErrnoToStatus(exec_errno, absl::StrCat("exec ", command_[0])));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pid_ = pid;
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
    launched_ = true;
    cv_.notify_all();
  }

  // Kills QEMU once the applicable deadline has passed; returns the time to
  // wait until it (or -1 for no limit).
  auto enforce_deadline = [this]() -> int {
    std::lock_guard<std::mutex> lock(mu_);
    if (reaped_ || killed_by_user_ || timed_out_ || killed_after_marker_) return 200;
    absl::Time deadline = deadline_;
    if (have_exit_) deadline = std::min(deadline, exit_time_ + kPoweroffGrace);
    absl::Time now = absl::Now();
    if (now >= deadline) {
      if (have_exit_) {
        killed_after_marker_ = true;
      } else {
        timed_out_ = true;
      }
      kill(pid_, SIGKILL);
      return 200;
    }
    return static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(deadline - now) + 1, 1000));
  };

  std::string err_partial;
  char buf[16384];
  while (out_fd_ >= 0 || err_fd_ >= 0) {
    int wait_ms = enforce_deadline();
    struct pollfd fds[2];
    nfds_t nfds = 0;
    if (out_fd_ >= 0) fds[nfds++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[nfds++] = {err_fd_, POLLIN, 0};
    int r = poll(fds, nfds, wait_ms);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    for (nfds_t i = 0; i < nfds; ++i) {
      if (fds[i].revents == 0) continue;
      const bool is_out = fds[i].fd == out_fd_;
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        close(fds[i].fd);
        (is_out ? out_fd_ : err_fd_) = -1;
        continue;
      }
      absl::string_view data(buf, static_cast<size_t>(got));
      if (is_out) {
        for (char c : data) {
          if (c == '\n') {
            HandleLine(std::move(partial_line_));
            partial_line_.clear();
          } else {
            partial_line_.push_back(c);
          }
        }
      } else {
        err_partial.append(data.data(), data.size());
        size_t nl;
        while ((nl = err_partial.find('\n')) != std::string::npos) {
          std::string line = err_partial.substr(0, nl);
          err_partial.erase(0, nl + 1);
          WriteAll(log_fd_, absl::StrCat("[qemu stderr] ", line, "\n"));
          if (options_.echo_console) {
            WriteAll(2, absl::StrCat("[", options_.name, " qemu stderr] ", line, "\n"));
          }
          std::lock_guard<std::mutex> lock(mu_);
          absl::StrAppend(&qemu_stderr_, line, "\n");
        }
      }
    }
  }
  if (!partial_line_.empty()) HandleLine(std::move(partial_line_));
  if (!err_partial.empty()) {
    WriteAll(log_fd_, absl::StrCat("[qemu stderr] ", err_partial, "\n"));
    std::lock_guard<std::mutex> lock(mu_);
    absl::StrAppend(&qemu_stderr_, err_partial, "\n");
  }

  // The pipes are closed; wait for QEMU to exit (still enforcing deadlines
  // in case it closed its output without exiting). WNOWAIT leaves it a
  // zombie, so Kill() can never signal a recycled pid.
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int r = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid_) break;
    if (r < 0 && errno != EINTR) break;
    enforce_deadline();
    usleep(20000);
  }
  int status = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    wait_status_ = status;
    reaped_ = true;
    cv_.notify_all();
  }
  const char* how = WIFEXITED(status) ? "exited with status " : "killed by signal ";
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
  WriteAll(log_fd_, absl::StrCat("# qemu ", how, code, " after ",
                                 absl::FormatDuration(absl::Now() - start_time_), "\n"));
  close(log_fd_);
  log_fd_ = -1;
}

void QemuGuest::HandleLine(std::string line) {
  line = StripTerminalControl(line);
  WriteAll(log_fd_, absl::StrCat(line, "\n"));
  if (options_.echo_console) {
    WriteAll(2, absl::StrCat("[", options_.name, "] ", line, "\n"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::string_view rest;
    const absl::Time now = absl::Now();
    if (!payload_begun_) {
      if (FindMarker(line, kMarkerPayloadBegin)) {
        payload_begun_ = true;
        payload_begin_time_ = now;
      } else if (FindMarker(line, kMarkerInitError, &rest)) {
        init_error_ = std::string(rest.empty() ? absl::string_view("(no reason)") : rest);
      } else if (!init_error_.empty() && FindMarker(line, kMarkerExit, &rest)) {
        have_exit_ = true;
        exit_time_ = now;
        if (!absl::SimpleAtoi(rest, &exit_code_)) exit_code_ = kInitFailureExitCode;
      }
    } else if (!payload_ended_) {
      if (FindMarker(line, kMarkerPayloadEnd)) {
        payload_ended_ = true;
        payload_end_time_ = now;
        // /init printed one extra '\n' before the marker.
        if (!payload_output_.empty()) payload_output_.pop_back();
      } else {
        absl::StrAppend(&payload_output_, line, "\n");
      }
    } else if (in_dmesg_) {
      if (FindMarker(line, kMarkerDmesgEnd)) {
        in_dmesg_ = false;
      } else {
        absl::StrAppend(&dmesg_, line, "\n");
      }
    } else if (FindMarker(line, kMarkerDmesgBegin)) {
      in_dmesg_ = true;
    } else if (FindMarker(line, kMarkerExit, &rest)) {
      if (absl::SimpleAtoi(rest, &exit_code_)) {
        have_exit_ = true;
        exit_time_ = now;
      }
    }
    absl::StrAppend(&console_, line, "\n");
    cv_.notify_all();
  }
  if (options_.on_console_line) options_.on_console_line(line);
}

std::string QemuGuest::Tail(size_t lines) const {
  std::vector<absl::string_view> all = absl::StrSplit(console_, '\n');
  if (!all.empty() && all.back().empty()) all.pop_back();
  const size_t from = all.size() > lines ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + static_cast<std::ptrdiff_t>(from), all.end(), "\n");
}

absl::Status QemuGuest::Failure(absl::StatusCode code, absl::string_view what) const {
  return absl::Status(
      code, absl::StrCat(what, "\n--- last ", kTailLines, " console lines ---\n",
                         Tail(kTailLines), "\n--- qemu stderr ---\n", qemu_stderr_,
                         "--- full console log: ", log_path_, " ---"));
}

absl::StatusOr<GuestResult> QemuGuest::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return reaped_; });
  if (!launch_status_.ok()) return launch_status_;
  if (!init_error_.empty()) {
    return Failure(absl::StatusCode::kInternal,
                   absl::StrCat("guest /init failed before the payload ran: ", init_error_));
  }
  if (!have_exit_) {
    const absl::Duration elapsed = absl::Now() - start_time_;
    const char* phase = payload_begun_ ? (payload_ended_ ? "after the payload" : "while the payload ran")
                                       : "while booting";
    if (killed_by_user_) {
      return Failure(absl::StatusCode::kAborted,
                     absl::StrCat("QEMU was killed by QemuGuest::Kill() ", phase));
    }
    if (timed_out_) {
      return Failure(absl::StatusCode::kDeadlineExceeded,
                     absl::StrCat("guest '", options_.name, "' did not finish within ",
                                  absl::FormatDuration(deadline_ - start_time_), " (",
                                  phase, "); QEMU was killed"));
    }
    std::string how = WIFEXITED(wait_status_)
                          ? absl::StrCat("exited with status ", WEXITSTATUS(wait_status_))
                          : absl::StrCat("was killed by signal ", WTERMSIG(wait_status_));
    return Failure(absl::StatusCode::kInternal,
                   absl::StrCat("QEMU ", how, " after ", absl::FormatDuration(elapsed), " ",
                                phase, ", before the guest's exit marker"));
  }
  GuestResult r;
  r.exit_code = exit_code_;
  r.payload_output = payload_output_;
  r.dmesg = dmesg_;
  r.console = console_;
  r.qemu_stderr = qemu_stderr_;
  r.console_log_path = log_path_;
  r.module_order = module_order_;
  if (payload_begun_) r.boot_time = payload_begin_time_ - start_time_;
  if (payload_ended_) r.payload_time = payload_end_time_ - payload_begin_time_;
  r.total_time = absl::Now() - start_time_;
  r.clean_poweroff = !killed_after_marker_ && !killed_by_user_;
  return r;
}

absl::Status QemuGuest::WaitForConsole(absl::string_view needle, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  const bool found = cv_.wait_until(lock, deadline, [&] {
    return console_.find(needle.data(), 0, needle.size()) != std::string::npos || reaped_;
  });
  if (console_.find(needle.data(), 0, needle.size()) != std::string::npos) {
    return absl::OkStatus();
  }
  if (found && reaped_) {
    return Failure(absl::StatusCode::kUnavailable,
                   absl::StrCat("QEMU exited before the console showed '", needle, "'"));
  }
  return Failure(absl::StatusCode::kDeadlineExceeded,
                 absl::StrCat("console did not show '", needle, "' within ",
                              absl::FormatDuration(timeout)));
}

void QemuGuest::Kill() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!launched_) return;
  if (!reaped_) {
    if (!timed_out_ && !killed_after_marker_) killed_by_user_ = true;
    kill(pid_, SIGKILL);
  }
  cv_.wait(lock, [this] { return reaped_; });
}

bool QemuGuest::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return launched_ && !reaped_;
}

std::string QemuGuest::console() const {
  std::lock_guard<std::mutex> lock(mu_);
  return console_;
}

QemuGuest::~QemuGuest() {
  Kill();
  if (reader_.joinable()) reader_.join();
  if (log_fd_ >= 0) close(log_fd_);
  const char* keep = getenv("VRPC_E2E_KEEP_WORKDIR");
  if (keep == nullptr || *keep == '\0' || *keep == '0') RemoveTree(work_dir_);
}

absl::StatusOr<GuestResult> RunGuest(GuestOptions options) {
  VRPC_ASSIGN_OR_RETURN(std::unique_ptr<QemuGuest> guest,
                        QemuGuest::Start(std::move(options)));
  return guest->Wait();
}

}  // namespace e2e
}  // namespace vrpc
