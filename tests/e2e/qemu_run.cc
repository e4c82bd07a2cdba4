// qemu_run: boots one e2e guest from the command line (debugging aid).
//
//   bazel run //tests/e2e:qemu_run -- tests/e2e/guest/vsock_selftest --only=half_close
//   bazel run //tests/e2e:qemu_run -- --sh='cat /proc/modules; lspci -k'
//   bazel run //tests/e2e:qemu_run -- --loglevel=8 --initramfs-out=/tmp/i.cpio --sh=true
//
// Exits with the payload's exit code, or 125 if the harness failed.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/e2e/harness/guest_kernel.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/initramfs.h"
#include "tests/e2e/harness/qemu_guest.h"

namespace vrpc {
namespace e2e {
namespace {

constexpr char kUsage[] = R"(usage: qemu_run [flags] [--] PROGRAM [ARGS...]
       qemu_run [flags] --sh=SCRIPT

Boots a QEMU (TCG) guest with the vrpc e2e harness, runs the payload, prints
the serial console, and exits with the payload's exit code (125: harness error).

PROGRAM is a static host binary (copied to /payload/), a runfile such as
tests/e2e/guest/vsock_selftest, or with --guest a path inside the guest.

  --sh=SCRIPT          run SCRIPT with the guest's busybox sh instead
  --guest              PROGRAM is a path in the guest (e.g. /bin/cat)
  --file=HOST:GUEST    copy host file HOST to GUEST (absolute) in the guest
  --env=NAME=VALUE     environment for the payload
  --qemu-arg=ARG       extra QEMU argument (repeat; e.g. --qemu-arg=-chardev
                       --qemu-arg=socket,id=vu,path=/tmp/vu.sock)
  --module=NAME        load an extra kernel module
  --timeout=SECONDS    default 120
  --cpus=N --memory=MB --loglevel=N (kernel console, default 4; 8 = all)
  --kernel=VERSION     guest kernel version (default: newest in /boot)
  --initramfs-out=PATH only build the initramfs (and the PVH vmlinux next to
                       it), print the QEMU command, exit
  --no-pvh             boot the bzImage instead of the extracted vmlinux
  --quiet              do not echo the console; print only the payload output
)";

std::string HostPath(const std::string& path) {
  if (!path.empty() && path[0] != '/') {
    const char* wd = getenv("BUILD_WORKING_DIRECTORY");
    if (wd != nullptr) {
      std::string p = absl::StrCat(wd, "/", path);
      if (access(p.c_str(), F_OK) == 0) return p;
    }
  }
  if (access(path.c_str(), F_OK) == 0) return path;
  absl::StatusOr<std::string> runfile = Runfile(path);
  return runfile.ok() ? *runfile : path;
}

int Main(int argc, char** argv) {
  GuestOptions opts;
  opts.name = "qemu_run";
  bool guest_program = false, quiet = false, have_sh = false;
  std::string initramfs_out;
  std::vector<std::string> positional;
  int i = 1;
  for (; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (!absl::StartsWith(a, "--")) break;
    auto value = [&](absl::string_view name, std::string* out) {
      std::string prefix = absl::StrCat("--", name, "=");
      if (!absl::StartsWith(a, prefix)) return false;
      *out = std::string(a.substr(prefix.size()));
      return true;
    };
    std::string v;
    int n = 0;
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--guest") {
      guest_program = true;
    } else if (a == "--no-pvh") {
      opts.pvh_boot = false;
    } else if (a == "--quiet") {
      quiet = true;
    } else if (value("sh", &v)) {
      opts.payload.SetShell(v);
      have_sh = true;
    } else if (value("file", &v)) {
      size_t colon = v.rfind(':');
      if (colon == std::string::npos) {
        std::cerr << "--file needs HOST:GUEST\n";
        return 125;
      }
      opts.payload.files.push_back(
          GuestFile{v.substr(colon + 1), HostPath(v.substr(0, colon)), "", 0});
    } else if (value("env", &v)) {
      size_t eq = v.find('=');
      if (eq == std::string::npos) {
        std::cerr << "--env needs NAME=VALUE\n";
        return 125;
      }
      opts.payload.env.push_back({v.substr(0, eq), v.substr(eq + 1)});
    } else if (value("qemu-arg", &v)) {
      opts.extra_qemu_args.push_back(v);
    } else if (value("module", &v)) {
      opts.modules.push_back(v);
    } else if (value("timeout", &v) && absl::SimpleAtoi(v, &n)) {
      opts.timeout = absl::Seconds(n);
    } else if (value("cpus", &v) && absl::SimpleAtoi(v, &n)) {
      opts.cpus = n;
    } else if (value("memory", &v) && absl::SimpleAtoi(v, &n)) {
      opts.memory_mb = n;
    } else if (value("loglevel", &v) && absl::SimpleAtoi(v, &n)) {
      opts.kernel_loglevel = n;
    } else if (value("kernel", &v)) {
      opts.kernel_version = v;
    } else if (value("initramfs-out", &v)) {
      initramfs_out = v;
    } else {
      std::cerr << "unknown flag " << a << "\n" << kUsage;
      return 125;
    }
  }
  for (; i < argc; ++i) positional.push_back(argv[i]);
  if (!have_sh) {
    if (positional.empty()) {
      std::cerr << kUsage;
      return 125;
    }
    if (guest_program) {
      opts.payload.argv = positional;
    } else {
      std::vector<std::string> args(positional.begin() + 1, positional.end());
      absl::Status s = opts.payload.SetHostBinary(HostPath(positional[0]), args);
      if (!s.ok()) {
        std::cerr << s << "\n";
        return 125;
      }
    }
  } else if (!positional.empty()) {
    std::cerr << "--sh and PROGRAM are exclusive\n";
    return 125;
  }
  opts.echo_console = !quiet;

  if (!initramfs_out.empty()) {
    absl::StatusOr<GuestKernel> kernel = FindGuestKernel(opts.kernel_version);
    absl::StatusOr<std::string> qemu = FindTool("qemu-system-x86_64", "VRPC_E2E_QEMU");
    if (!kernel.ok() || !qemu.ok()) {
      std::cerr << (kernel.ok() ? qemu.status() : kernel.status()) << "\n";
      return 125;
    }
    InitramfsSpec spec;
    spec.kernel = *kernel;
    spec.modules = opts.modules;
    spec.argv = opts.payload.argv;
    spec.env = opts.payload.env;
    spec.files = opts.payload.files;
    absl::StatusOr<InitramfsInfo> info = BuildInitramfs(spec, initramfs_out);
    if (!info.ok()) {
      std::cerr << info.status() << "\n";
      return 125;
    }
    std::string image = kernel->image;
    if (opts.pvh_boot) {
      const size_t slash = initramfs_out.rfind('/');
      absl::StatusOr<std::string> vmlinux = ExtractPvhKernel(
          *kernel, slash == std::string::npos ? "." : initramfs_out.substr(0, slash));
      if (vmlinux.ok()) image = *vmlinux;
    }
    std::vector<std::string> quoted;
    for (const std::string& a : QemuCommandLine(*qemu, opts, image, info->path)) {
      quoted.push_back(ShellQuote(a));
    }
    std::cout << "# initramfs: " << info->path << " (" << info->size_bytes
              << " bytes), modules: " << absl::StrJoin(info->module_order, " ") << "\n"
              << absl::StrJoin(quoted, " ") << "\n";
    return 0;
  }

  absl::StatusOr<GuestResult> r = RunGuest(opts);
  if (!r.ok()) {
    std::cerr << "qemu_run: " << r.status() << "\n";
    return 125;
  }
  if (quiet) std::cout << r->payload_output;
  std::cerr << "qemu_run: payload exit code " << r->exit_code << "; boot "
            << absl::FormatDuration(r->boot_time) << ", payload "
            << absl::FormatDuration(r->payload_time) << ", total "
            << absl::FormatDuration(r->total_time) << "; console log " << r->console_log_path
            << "\n";
  return r->exit_code;
}

}  // namespace
}  // namespace e2e
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::e2e::Main(argc, argv); }
