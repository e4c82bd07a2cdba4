#include "tests/e2e/harness/host_tools.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/base/unique_fd.h"
#include "tools/cpp/runfiles/runfiles.h"

extern char** environ;

namespace vrpc {
namespace e2e {
namespace {

constexpr const char* kFallbackDirs[] = {
    "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
    "/usr/bin",        "/sbin",          "/bin",
};

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

std::string GetEnv(const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

absl::StatusOr<std::string> FindTool(absl::string_view name,
                                     absl::string_view env_override) {
  if (!env_override.empty()) {
    std::string value = GetEnv(std::string(env_override).c_str());
    if (!value.empty()) {
      if (!IsExecutableFile(value)) {
        return absl::FailedPreconditionError(
            absl::StrCat("$", env_override, "=", value,
                         " is not an executable file"));
      }
      return value;
    }
  }
  std::vector<std::string> dirs =
      absl::StrSplit(GetEnv("PATH"), ':', absl::SkipEmpty());
  for (const char* dir : kFallbackDirs) dirs.push_back(dir);
  for (const std::string& dir : dirs) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "host program '", name, "' not found (searched $PATH and ",
      absl::StrJoin(kFallbackDirs, ":"), ")",
      env_override.empty() ? "" : absl::StrCat("; or set $", env_override),
      ". Run tools/install_deps.sh as root to install the QEMU end-to-end "
      "test dependencies."));
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: empty argv");
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(),
                       environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::ErrnoToStatus(rc, absl::StrCat("cannot run ", argv[0]));
  }
  out_write.Reset();
  err_write.Reset();

  CommandResult result;
  struct pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return absl::ErrnoToStatus(saved, "poll");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                       : 128 + WTERMSIG(status);
  return result;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

absl::Status WriteStringToFile(const std::string& path,
                               absl::string_view contents) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat("create ", path));
  while (!contents.empty()) {
    ssize_t n = write(fd.get(), contents.data(), contents.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("write ", path));
    }
    contents.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> IsStaticElf(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFileToString(path);
  if (!data.ok()) return data.status();
  const std::string& d = *data;
  if (d.size() < sizeof(Elf64_Ehdr) || memcmp(d.data(), ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an ELF file"));
  }
  Elf64_Ehdr eh;
  memcpy(&eh, d.data(), sizeof(eh));
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not an x86-64 ELF64 file"));
  }
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not an ELF executable"));
  }
  for (int i = 0; i < eh.e_phnum; ++i) {
    uint64_t off = eh.e_phoff + static_cast<uint64_t>(i) * eh.e_phentsize;
    if (eh.e_phentsize < sizeof(Elf64_Phdr) || off + sizeof(Elf64_Phdr) > d.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": truncated ELF program headers"));
    }
    Elf64_Phdr ph;
    memcpy(&ph, d.data() + off, sizeof(ph));
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

absl::StatusOr<std::string> Runfile(absl::string_view path) {
  static std::mutex mu;
  static bazel::tools::cpp::runfiles::Runfiles* runfiles = nullptr;
  static std::string init_error;
  std::string rlocation;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (runfiles == nullptr && init_error.empty()) {
      std::string error;
      runfiles = bazel::tools::cpp::runfiles::Runfiles::CreateForTest(&error);
      if (runfiles == nullptr) {
        // Not under `bazel test`: try `bazel run` / a direct invocation.
        std::string exe;
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        if (n > 0) exe.assign(buf, static_cast<size_t>(n));
        runfiles = bazel::tools::cpp::runfiles::Runfiles::Create(exe, &error);
      }
      if (runfiles == nullptr) init_error = error.empty() ? "unknown" : error;
    }
    if (runfiles == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot initialise Bazel runfiles: ", init_error));
    }
    std::string p(path);
    if (!absl::StartsWith(p, "vrpc/")) p = absl::StrCat("vrpc/", p);
    rlocation = runfiles->Rlocation(p);
  }
  if (rlocation.empty() || access(rlocation.c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "runfile ", path, " not found (", rlocation,
        "); is it in the test's `data`?"));
  }
  return rlocation;
}

std::string TestOutputDir() {
  for (const char* var : {"TEST_UNDECLARED_OUTPUTS_DIR", "TEST_TMPDIR", "TMPDIR"}) {
    std::string value = GetEnv(var);
    if (!value.empty()) return value;
  }
  return "/tmp";
}

absl::StatusOr<std::string> MakeTempDir(absl::string_view prefix) {
  std::string base = GetEnv("TEST_TMPDIR");
  if (base.empty()) base = GetEnv("TMPDIR");
  if (base.empty()) base = "/tmp";
  std::string templ = absl::StrCat(base, "/", prefix, "XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdtemp ", templ));
  }
  return std::string(buf.data());
}

absl::StatusOr<std::string> MakeSocketDir() {
  // Room for "/" + a 20-character socket name.
  constexpr size_t kMaxDirLength = 107 - 21;
  std::string base = GetEnv("TEST_TMPDIR");
  if (base.empty() || base.size() + 14 > kMaxDirLength) base = "/tmp";
  std::string templ = base + "/vrpc-sock-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdtemp ", templ));
  }
  return std::string(buf.data());
}

void RemoveTree(const std::string& path) {
  if (path.empty()) return;
  nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) -> int {
        remove(p);
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

int CompareVersions(absl::string_view a, absl::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    bool da = isdigit(static_cast<unsigned char>(a[i])) != 0;
    bool db = isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      absl::string_view na = a.substr(i, i2 - i), nb = b.substr(j, j2 - j);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size() ? -1 : 1;
      if (int c = na.compare(nb); c != 0) return c < 0 ? -1 : 1;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) <
                                       static_cast<unsigned char>(b[j])
                                   ? -1
                                   : 1;
      ++i;
      ++j;
    }
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

}  // namespace e2e
}  // namespace vrpc
