// Linked into vrpc_cc_fuzz_test's <name>_fuzzer binary under --config=fuzz.
//
// `bazel run` starts a binary inside its runfiles tree, so a corpus path
// given relative to the user's shell (`bazel run ... -- path/to/corpus`)
// would not be found, and libFuzzer would write new inputs into Bazel's
// output tree. Before libFuzzer's main() runs, move back to the directory
// `bazel run` was invoked from (BUILD_WORKING_DIRECTORY). Has no effect when
// the binary is started directly.

#include <cstdio>
#include <cstdlib>

#include <unistd.h>

namespace {

__attribute__((constructor)) void ChdirToBazelRunWorkingDirectory() {
  const char* dir = std::getenv("BUILD_WORKING_DIRECTORY");
  if (dir == nullptr || dir[0] == '\0') return;
  if (chdir(dir) != 0) {
    std::perror("vrpc fuzzer: chdir(BUILD_WORKING_DIRECTORY)");
  }
}

}  // namespace
