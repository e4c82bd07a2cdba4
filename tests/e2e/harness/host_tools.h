// File: tests/e2e/harness/host_tools.h
//
// Small host-side helpers for the QEMU end-to-end harness: locating host
// programs and runfiles, running a command and capturing its output, reading
// files, recognising static ELF executables, and test output directories.
// Test-only code; none of it touches AF_VSOCK.
#ifndef VRPC_TESTS_E2E_HARNESS_HOST_TOOLS_H_
#define VRPC_TESTS_E2E_HARNESS_HOST_TOOLS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace e2e {

// Finds the executable |name|. If |env_override| names a set, non-empty
// environment variable, its value is used (and must be an executable file).
// Otherwise searches $PATH and then /usr/local/sbin, /usr/local/bin,
// /usr/sbin, /usr/bin, /sbin, /bin (Bazel's test PATH lacks the sbin
// directories, where e.g. modinfo lives). Returns kFailedPrecondition, naming
// the places searched and tools/install_deps.sh, if it is not found.
// Thread-safe.
[[nodiscard]] absl::StatusOr<std::string> FindTool(
    absl::string_view name, absl::string_view env_override = "");

// Output of a finished command.
struct CommandResult {
  // Exit status (0-255); 128 + N if it was killed by signal N.
  int exit_code = 0;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr
};

// Runs |argv| (argv[0] is a path; no shell, no PATH search) with stdin from
// /dev/null and waits for it. Returns an error only if it could not be
// started; a non-zero exit is reported in CommandResult::exit_code.
// Thread-safe.
[[nodiscard]] absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv);

// Reads a whole file. Errors carry the path and errno.
[[nodiscard]] absl::StatusOr<std::string> ReadFileToString(
    const std::string& path);

// Writes (creating or truncating) a whole file.
[[nodiscard]] absl::Status WriteStringToFile(const std::string& path,
                                             absl::string_view contents);

// Returns true if |path| is an x86-64 ELF executable without a program
// interpreter (PT_INTERP), i.e. it runs without a dynamic loader (static or
// static-pie). Returns false for dynamically linked ELF files;
// kInvalidArgument if it is not an ELF file at all.
[[nodiscard]] absl::StatusOr<bool> IsStaticElf(const std::string& path);

// Resolves a runfile of the current test (or `bazel run` binary). |path| is
// workspace-relative ("tests/e2e/guest/vsock_selftest"); a leading "vrpc/"
// is accepted too. Returns kNotFound if the file does not exist. Thread-safe.
[[nodiscard]] absl::StatusOr<std::string> Runfile(absl::string_view path);

// Directory for files a developer should see after the test:
// $TEST_UNDECLARED_OUTPUTS_DIR under Bazel (zipped into
// bazel-testlogs/<pkg>/<test>/test.outputs/outputs.zip), else $TEST_TMPDIR,
// else $TMPDIR or /tmp.
std::string TestOutputDir();

// Creates a fresh private directory under $TEST_TMPDIR (or $TMPDIR or /tmp)
// whose name starts with |prefix|.
[[nodiscard]] absl::StatusOr<std::string> MakeTempDir(absl::string_view prefix);

// Creates a fresh private directory for Unix domain sockets (e.g. a vhost-user
// socket for QEMU's -chardev). sun_path holds at most 107 bytes and Bazel's
// $TEST_TMPDIR can be longer than that allows, so this falls back to /tmp
// when $TEST_TMPDIR is too long. The caller removes it (RemoveTree).
[[nodiscard]] absl::StatusOr<std::string> MakeSocketDir();

// Removes |path| recursively; errors are ignored.
void RemoveTree(const std::string& path);

// Compares two version strings the way `sort -V` roughly does: runs of digits
// numerically, everything else byte-wise. Returns <0, 0 or >0.
int CompareVersions(absl::string_view a, absl::string_view b);

}  // namespace e2e
}  // namespace vrpc

#endif  // VRPC_TESTS_E2E_HARNESS_HOST_TOOLS_H_
