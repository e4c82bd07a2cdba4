// File: tests/e2e/harness/guest_kernel.h
//
// Locates the guest kernel (Debian's linux-image-amd64 package: /boot/vmlinuz-V
// plus /lib/modules/V) and resolves kernel modules with their dependencies
// (`modinfo -k V`), independently of the kernel the host is running.
#ifndef VRPC_TESTS_E2E_HARNESS_GUEST_KERNEL_H_
#define VRPC_TESTS_E2E_HARNESS_GUEST_KERNEL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace e2e {

// A kernel that can boot a guest.
struct GuestKernel {
  std::string version;      // e.g. "6.1.0-56-amd64"
  std::string image;        // "/boot/vmlinuz-6.1.0-56-amd64"
  std::string modules_dir;  // "/lib/modules/6.1.0-56-amd64"
};

// Finds the guest kernel. With a non-empty |version| (or, when |version| is
// empty, a non-empty $VRPC_E2E_KERNEL_VERSION) that exact version is used.
// Otherwise picks the newest version V (by CompareVersions) for which both
// /boot/vmlinuz-V and /lib/modules/V/modules.dep exist; `uname -r` is never
// consulted. Returns kFailedPrecondition with an explanation (install
// linux-image-amd64 via tools/install_deps.sh) if none is usable.
[[nodiscard]] absl::StatusOr<GuestKernel> FindGuestKernel(
    absl::string_view version = "");

// One kernel module to load in the guest.
struct KernelModule {
  std::string name;                  // as modinfo reports it ("vsock_loopback")
  std::string path;                  // host file; may end in .ko.xz/.zst/.gz
  std::vector<std::string> depends;  // direct dependencies (modinfo depends:)
};

// Resolves |names| (module names as modprobe takes them) against |kernel|
// with `modinfo -k <version>`, adds every dependency recursively, and
// returns the modules in a valid load order (dependencies first; otherwise
// the order of |names|). Modules built into the kernel are omitted. Returns
// kNotFound naming the module if one does not exist, kFailedPrecondition if
// modinfo is missing, kInvalidArgument on a dependency cycle.
[[nodiscard]] absl::StatusOr<std::vector<KernelModule>> ResolveModules(
    const GuestKernel& kernel, const std::vector<std::string>& names);

// Returns the uncompressed contents of |module| (decompressing .ko.xz with
// xz, .ko.zst with zstd and .ko.gz with gzip; the guest's insmod then needs
// no decompression support).
[[nodiscard]] absl::StatusOr<std::string> ReadModule(const KernelModule& module);

// Extracts the uncompressed kernel (vmlinux, an ELF file) from the bzImage
// |kernel.image| into |dir|/vmlinux-<version> (or reuses it if already
// there) and returns its path, provided it can be booted directly through
// QEMU's PVH entry (-kernel vmlinux): the ELF must carry the Xen
// PHYS32_ENTRY note (CONFIG_PVH). Under TCG this saves the in-guest
// decompression of the bzImage, about half the boot time (~3 s). Returns
// kUnimplemented if the image's compression (xz, gzip and zstd are
// supported) or format is not supported or there is no PVH entry; callers
// then boot the bzImage. Not thread-safe for the same |dir|.
[[nodiscard]] absl::StatusOr<std::string> ExtractPvhKernel(const GuestKernel& kernel,
                                                          const std::string& dir);

}  // namespace e2e
}  // namespace vrpc

#endif  // VRPC_TESTS_E2E_HARNESS_GUEST_KERNEL_H_
