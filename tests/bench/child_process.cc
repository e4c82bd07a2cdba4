// File: tests/bench/child_process.cc
#include "tests/bench/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace vrpc {
namespace bench {

absl::StatusOr<ProcMemory> ReadProcMemory(pid_t pid) {
  const std::string path = pid == 0 ? "/proc/self/status" : absl::StrCat("/proc/", pid, "/status");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  ProcMemory m;
  bool rss = false, hwm = false;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    int64_t* field = nullptr;
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      field = &m.rss_kb;
      rss = true;
    } else if (absl::ConsumePrefix(&v, "VmHWM:")) {
      field = &m.hwm_kb;
      hwm = true;
    } else {
      continue;
    }
    v = absl::StripSuffix(absl::StripAsciiWhitespace(v), "kB");
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(v), field)) {
      return absl::InternalError(absl::StrCat(path, ": bad line ", line));
    }
  }
  if (!rss || !hwm) return absl::InternalError(absl::StrCat(path, ": no VmRSS/VmHWM"));
  return m;
}

std::string SelfDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, absl::string_view ready_prefix, absl::Duration timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::ErrnoToStatus(errno, "fork");
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid, fds[0]));
  const absl::Time deadline = absl::Now() + timeout;
  std::string seen;
  while (true) {
    absl::StatusOr<std::string> line = child->ReadLine(deadline - absl::Now());
    if (!line.ok()) {
      if (absl::IsOutOfRange(line.status())) {
        absl::StatusOr<int> code = child->Wait(absl::Seconds(5));
        return absl::UnavailableError(absl::StrCat(
            argv[0], " exited (", code.ok() ? *code : -1, ") before it was ready: ", seen));
      }
      return absl::Status(line.status().code(),
                          absl::StrCat(argv[0], " not ready: ", line.status().message()));
    }
    if (absl::StartsWith(*line, ready_prefix)) {
      child->ready_line_ = *line;
      return child;
    }
    absl::StrAppend(&seen, *line, "; ");
  }
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  close(out_fd_);
}

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return absl::DeadlineExceededError("no line from the child in time");
    pollfd p = {out_fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(ms));
    if (r < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "read");
    if (n == 0) return absl::OutOfRangeError("the child closed its stdout");
    if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
  }
}

void ChildProcess::Pause() { kill(pid_, SIGSTOP); }
void ChildProcess::Resume() { kill(pid_, SIGCONT); }

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (reaped_) return exit_code_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (r < 0) return absl::ErrnoToStatus(errno, "waitpid");
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("the child still runs");
    absl::SleepFor(absl::Milliseconds(5));
  }
}

int ChildProcess::Terminate(absl::Duration grace) {
  if (reaped_) return exit_code_;
  kill(pid_, SIGCONT);
  kill(pid_, SIGTERM);
  absl::StatusOr<int> code = Wait(grace);
  if (code.ok()) return *code;
  kill(pid_, SIGKILL);
  code = Wait(absl::Seconds(10));
  return code.ok() ? *code : -1;
}

}  // namespace bench
}  // namespace vrpc
