// Replay driver for vrpc_cc_fuzz_test (tools/build_defs/fuzz.bzl).
//
// Links against a fuzz target that defines
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// and feeds it every input named on the command line, in order. A directory
// argument replays every regular file below it (sorted, recursively).
// Arguments starting with '-' are libFuzzer flags and are ignored, so the
// same command line can be used with the real fuzzer.
//
// Exit status: 0 when at least one input ran and every input could be read;
// 1 when an input could not be read or no input was found at all (a corpus
// that silently replays nothing is a broken test). A crash in the target
// crashes this program, which fails the test.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional hook, as in libFuzzer.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv)
    __attribute__((weak));

namespace {

// Appends the regular files at or below `path` to `out`. Returns false (and
// prints why) if `path` cannot be read.
bool CollectInputs(const std::string& path, std::vector<std::string>* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "fuzz_replay: cannot stat %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  if (S_ISREG(st.st_mode)) {
    out->push_back(path);
    return true;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "fuzz_replay: %s is not a file or directory\n",
                 path.c_str());
    return false;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    std::fprintf(stderr, "fuzz_replay: cannot open directory %s: %s\n",
                 path.c_str(), std::strerror(errno));
    return false;
  }
  std::vector<std::string> children;
  while (struct dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    children.push_back(path + "/" + name);
  }
  closedir(dir);
  std::sort(children.begin(), children.end());
  bool ok = true;
  for (const std::string& child : children) {
    ok = CollectInputs(child, out) && ok;
  }
  return ok;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* data) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  data->assign(std::istreambuf_iterator<char>(in),
               std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);

  std::vector<std::string> inputs;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') {
      std::fprintf(stderr, "fuzz_replay: ignoring flag %s\n", argv[i]);
      continue;
    }
    ok = CollectInputs(argv[i], &inputs) && ok;
  }

  size_t ran = 0;
  std::vector<uint8_t> data;
  for (const std::string& path : inputs) {
    if (!ReadFile(path, &data)) {
      std::fprintf(stderr, "fuzz_replay: cannot read %s\n", path.c_str());
      ok = false;
      continue;
    }
    // Copy into an exactly-sized heap buffer (never null, even when empty)
    // so that ASan catches reads past the end, as it would under libFuzzer.
    std::unique_ptr<uint8_t[]> exact(new uint8_t[data.size()]);
    std::copy(data.begin(), data.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), data.size());
    ++ran;
  }

  std::printf("fuzz_replay: ran %zu input(s)\n", ran);
  if (ran == 0) {
    std::fprintf(stderr,
                 "fuzz_replay: no inputs found; pass corpus files or "
                 "directories as arguments\n");
    return 1;
  }
  return ok ? 0 : 1;
}
