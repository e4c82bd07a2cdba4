// File: tests/e2e/harness/initramfs.h
//
// Builds the guest's initramfs at test time: a static busybox with its applet
// symlinks, the requested kernel modules (with dependencies, decompressed),
// an /init script, and the test payload (a program plus arguments, and
// optional extra files).
//
// The /init script (see MakeInitScript) mounts /proc, /sys, /dev (devtmpfs),
// /dev/pts, /dev/shm, inserts the modules in dependency order, runs the
// payload with stdout+stderr on the serial console, dumps the kernel log,
// prints the exit marker and powers the guest off (`poweroff -f`). Every line
// it prints itself starts with "VRPC-E2E-" (the markers below), so the host
// side can follow the guest through its phases.
#ifndef VRPC_TESTS_E2E_HARNESS_INITRAMFS_H_
#define VRPC_TESTS_E2E_HARNESS_INITRAMFS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/e2e/harness/guest_kernel.h"

namespace vrpc {
namespace e2e {

// Console markers printed by /init, one per line. Parsers should accept
// trailing text after a marker (e.g. "VRPC-E2E-PAYLOAD-BEGIN uptime=2.31").
inline constexpr absl::string_view kMarkerInit = "VRPC-E2E-INIT";  // + kernel release
inline constexpr absl::string_view kMarkerInitError = "VRPC-E2E-INIT-ERROR";  // + reason
inline constexpr absl::string_view kMarkerModulesLoaded = "VRPC-E2E-MODULES-LOADED";
inline constexpr absl::string_view kMarkerPayloadBegin = "VRPC-E2E-PAYLOAD-BEGIN";
inline constexpr absl::string_view kMarkerPayloadEnd = "VRPC-E2E-PAYLOAD-END";
inline constexpr absl::string_view kMarkerDmesgBegin = "VRPC-E2E-DMESG-BEGIN";
inline constexpr absl::string_view kMarkerDmesgEnd = "VRPC-E2E-DMESG-END";
inline constexpr absl::string_view kMarkerExit = "VRPC-E2E-EXIT";  // + exit code

// The exit code /init reports (with kMarkerInitError) when it fails before
// the payload could run.
inline constexpr int kInitFailureExitCode = 255;

// The modules every guest loads unless told otherwise: virtio over PCI, the
// AF_VSOCK core with the virtio transport (for QEMU's vhost-user-vsock-pci)
// and the loopback transport (CID 1), and UIO for the userspace driver test.
std::vector<std::string> DefaultGuestModules();

// A file to put into the guest's root filesystem.
struct GuestFile {
  // Absolute path in the guest, e.g. "/payload/input.bin".
  std::string guest_path;
  // Host file to copy. If empty, |contents| is used.
  std::string host_path;
  std::string contents;
  // Permission bits. 0 means: 0755 if the host file is executable, else 0644.
  uint32_t mode = 0;
};

// What to put into the initramfs.
struct InitramfsSpec {
  GuestKernel kernel;
  // Modules to load (names as for modprobe); dependencies are added.
  std::vector<std::string> modules = DefaultGuestModules();
  // Payload command line; argv[0] is a path *in the guest*. Must not be empty.
  std::vector<std::string> argv;
  // Extra environment for the payload (PATH, HOME and TERM are preset).
  std::vector<std::pair<std::string, std::string>> env;
  // Extra files (payload binaries, data).
  std::vector<GuestFile> files;
};

// What BuildInitramfs produced.
struct InitramfsInfo {
  std::string path;                       // the archive
  size_t size_bytes = 0;
  std::vector<std::string> module_order;  // insmod order used by /init
  std::string init_script;                // contents of /init
};

// Returns the /init script that loads |module_order| (names; files are
// /lib/modules/vrpc/<name>.ko) and runs |argv| with |env|. Exposed for tests.
std::string MakeInitScript(const std::vector<std::string>& module_order,
                           const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& env);

// Quotes |s| for a POSIX shell (single quotes).
std::string ShellQuote(absl::string_view s);

// Writes the initramfs described by |spec| to |output_path| (uncompressed
// newc cpio). Requires a static busybox on the host ($VRPC_E2E_BUSYBOX or
// busybox in PATH/sbin dirs; Debian's busybox-static) and modinfo (kmod).
// Returns kFailedPrecondition when a host tool is missing, kNotFound for a
// missing module or host file, kInvalidArgument for a bad spec. Thread-safe.
[[nodiscard]] absl::StatusOr<InitramfsInfo> BuildInitramfs(
    const InitramfsSpec& spec, const std::string& output_path);

}  // namespace e2e
}  // namespace vrpc

#endif  // VRPC_TESTS_E2E_HARNESS_INITRAMFS_H_
