// File: tests/bench/child_process.h
//
// A peer process of the benchmark (a server, or a client measured on its
// own): started with fork/exec, its stdout read line by line through a
// pipe (stderr is inherited), its memory read from /proc/PID/status.
#ifndef VRPC_TESTS_BENCH_CHILD_PROCESS_H_
#define VRPC_TESTS_BENCH_CHILD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vrpc {
namespace bench {

// VmRSS and VmHWM of a process, in KiB.
struct ProcMemory {
  int64_t rss_kb = 0;
  int64_t hwm_kb = 0;
};
// Reads /proc/|pid|/status (pid 0: this process). kNotFound if the process
// is gone; kInternal if the fields are missing.
absl::StatusOr<ProcMemory> ReadProcMemory(pid_t pid);

// The directory of this process's executable: the benchmark's peer
// binaries are built beside it (data dependencies).
std::string SelfDir();

class ChildProcess {
 public:
  // Runs |argv| (argv[0] is the path) and waits until it prints a line
  // starting with |ready_prefix|. kDeadlineExceeded if it does not within
  // |timeout|; kUnavailable (with what it printed) if it exits first.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             absl::string_view ready_prefix,
                                                             absl::Duration timeout);
  // Kills (SIGKILL) and reaps the child if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& ready_line() const { return ready_line_; }
  // The next stdout line; kDeadlineExceeded after |timeout|, kOutOfRange at EOF.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);
  // SIGSTOP / SIGCONT: freezes a busy-polling peer while a baseline runs.
  void Pause();
  void Resume();
  // SIGTERM, then SIGKILL after |grace|; returns the exit code (128+signal
  // if killed by a signal).
  int Terminate(absl::Duration grace);
  // Waits for the child to exit by itself; kDeadlineExceeded after |timeout|.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  ChildProcess(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}

  pid_t pid_;
  int out_fd_;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string buffer_;
  std::string ready_line_;
};

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_CHILD_PROCESS_H_
