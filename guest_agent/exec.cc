// File: guest_agent/exec.cc
//
// Exec: the program runs with pipes for stdin, stdout and stderr. This
// handler's thread pumps stdout/stderr into responses and reaps the child;
// a second thread reads requests (stdin bytes, stdin EOF, signals). The
// call ending early (cancel, deadline, client gone) kills the program.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/unique_fd.h"
#include "guest_agent/agent_service.h"

extern char** environ;

namespace vrpc {
namespace guest_agent {
namespace {

constexpr size_t kChunk = 64 * 1024;

struct Pipe {
  UniqueFd read, write;
};

absl::StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Holds a slot of the concurrent-programs limit.
class Slot {
 public:
  Slot(std::atomic<uint32_t>& n, uint32_t max) : n_(n) { ok_ = n_.fetch_add(1) < max; }
  ~Slot() { n_.fetch_sub(1); }
  bool ok() const { return ok_; }

 private:
  std::atomic<uint32_t>& n_;
  bool ok_ = false;
};

// Writes all of |data| to |fd| (blocking). False if the program closed its
// stdin.
bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::Status AgentService::Exec(
    rpc::ServerContext* context,
    rpc::ServerReaderWriter<agent::ExecResponse, agent::ExecRequest>* stream) {
  agent::ExecRequest first;
  if (!stream->Read(&first) || !first.has_start()) {
    return absl::InvalidArgumentError("the first Exec request must carry ExecStart");
  }
  const agent::ExecStart& start = first.start();
  if (start.argv().empty() || start.argv(0).empty()) {
    return absl::InvalidArgumentError("ExecStart.argv is empty");
  }
  for (const std::string& a : start.argv()) {
    if (a.find('\0') != std::string::npos) return absl::InvalidArgumentError("NUL in argv");
  }
  Slot slot(running_programs_, options_.limits.max_exec_processes);
  if (!slot.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the guest already runs ", options_.limits.max_exec_processes, " programs"));
  }

  // The environment: the agent's, plus the request's (NAME=VALUE, names
  // without '=').
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& [k, v] : start.env()) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad environment variable \"", k, "\""));
    }
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings(start.argv().begin(), start.argv().end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  auto in = MakePipe();
  auto out = MakePipe();
  auto err = MakePipe();
  if (!in.ok() || !out.ok() || !err.ok()) return absl::InternalError("cannot create pipes");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (start.stdin()) {
    posix_spawn_file_actions_adddup2(&actions, in->read.get(), 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out->write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err->write.get(), 2);
  if (!start.cwd().empty()) posix_spawn_file_actions_addchdir_np(&actions, start.cwd().c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal handling and an empty mask (the
  // agent blocks SIGTERM/SIGINT to wait for them).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    const std::string what = absl::StrCat("cannot run ", start.argv(0), ": ", std::strerror(rc));
    return rc == ENOENT ? absl::NotFoundError(what)
           : rc == EACCES ? absl::PermissionDeniedError(what)
                          : absl::FailedPreconditionError(what);
  }
  in->read.Reset();
  out->write.Reset();
  err->write.Reset();
  if (!start.stdin()) in->write.Reset();

  agent::ExecResponse started;
  started.set_pid(static_cast<uint32_t>(pid));
  stream->Write(started);

  // Requests: stdin, stdin EOF, signals. Ends when the client half-closes
  // or the call ends.
  std::mutex stdin_mu;
  UniqueFd stdin_fd = std::move(in->write);
  std::atomic<bool> done{false};
  std::thread requests([&] {
    agent::ExecRequest req;
    while (!done.load() && stream->Read(&req)) {
      if (req.has_stdin()) {
        std::lock_guard<std::mutex> lock(stdin_mu);
        if (stdin_fd.get() >= 0 && !WriteAll(stdin_fd.get(), req.stdin())) stdin_fd.Reset();
      } else if (req.has_close_stdin()) {
        std::lock_guard<std::mutex> lock(stdin_mu);
        stdin_fd.Reset();
      } else if (req.has_signal()) {
        if (req.signal() > 0 && req.signal() < 65) ::kill(pid, req.signal());
      }
    }
    std::lock_guard<std::mutex> lock(stdin_mu);
    stdin_fd.Reset();  // the client sends no more: the program sees EOF
  });

  // Output until both pipes close, then the exit status.
  UniqueFd fds[2] = {std::move(out->read), std::move(err->read)};
  bool cancelled = false;
  std::vector<char> buf(kChunk);
  while (fds[0].get() >= 0 || fds[1].get() >= 0) {
    if (context->IsCancelled()) {
      cancelled = true;
      break;
    }
    pollfd p[2];
    for (int i = 0; i < 2; ++i) p[i] = pollfd{fds[i].get(), POLLIN, 0};
    if (::poll(p, 2, 100) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].get() < 0 || p[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].get(), buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        fds[i].Reset();
        continue;
      }
      agent::ExecResponse r;
      (i == 0 ? r.mutable_stdout() : r.mutable_stderr())->assign(buf.data(), n);
      if (!stream->Write(r)) {
        cancelled = true;
        break;
      }
    }
    if (cancelled) break;
  }
  if (cancelled) {
    ::kill(-pid, SIGKILL);  // its process group (POSIX_SPAWN_SETPGROUP)
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  done.store(true);
  if (cancelled) {
    stream->CloseReads();
    requests.join();
    return absl::CancelledError("the call ended; the program was killed");
  }
  agent::ExecResponse exit;
  if (WIFEXITED(status)) {
    exit.mutable_exit()->set_code(WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    exit.mutable_exit()->set_code(-1);
    exit.mutable_exit()->set_signal(WTERMSIG(status));
  }
  stream->Write(exit);
  stream->CloseReads();  // the client need not half-close
  requests.join();
  return absl::OkStatus();
}

}  // namespace guest_agent
}  // namespace vrpc
