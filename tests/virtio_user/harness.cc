#include "tests/virtio_user/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <condition_variable>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/virtio_user_bus.h"

extern char** environ;

namespace vrpc {
namespace virtio_user_test {
namespace {

sockaddr_un UnixAddr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  VRPC_CHECK(path.size() < sizeof(addr.sun_path)) << path;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Counts bytes of |data| at stream offset |offset| that differ from the
// probe pattern.
uint64_t Mismatches(uint64_t offset, const uint8_t* data, size_t n) {
  return vsock::ProbePatternMismatches(offset, data, n);
}

// Host-side sockets give up after 60 s without progress (a stall fails the
// test instead of hanging it).
void SetIoTimeouts(int fd) {
  timeval tv{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool WriteAll(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/vrpc-vu.XXXXXX";
  VRPC_CHECK(::mkdtemp(tmpl) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  // Only sockets and logs live here.
  const std::string cmd = absl::StrCat("rm -rf '", path_, "'");
  (void)!::system(cmd.c_str());
}

std::string Runfile(const std::string& path) {
  const char* srcdir = ::getenv("TEST_SRCDIR");
  VRPC_CHECK(srcdir != nullptr) << "not run by bazel test";
  return absl::StrCat(srcdir, "/vrpc/", path);
}

bool WaitForText(const std::string& path, const std::string& text, absl::Duration timeout,
                 size_t from) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(path);
    const std::string content((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    if (content.size() > from && content.find(text, from) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

namespace {
std::mutex children_mu;
std::vector<pid_t> children;  // guarded by children_mu
}  // namespace

void DumpStacks() {
  std::vector<pid_t> pids = {::getpid()};
  {
    std::lock_guard<std::mutex> lock(children_mu);
    pids.insert(pids.end(), children.begin(), children.end());
  }
  for (pid_t pid : pids) {
    std::fprintf(stderr, "==== stacks of pid %d\n", static_cast<int>(pid));
    const std::string cmd = absl::StrCat("gdb -batch -nx -p ", pid,
                                         " -ex 'thread apply all bt' 1>&2 2>/dev/null");
    (void)!::system(cmd.c_str());
  }
}

// ---------------------------------------------------------------------------
// ChildProcess

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(std::vector<std::string> args,
                                                                  const std::string& log,
                                                                  bool control) {
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (control) {
    VRPC_CHECK(::pipe2(in, O_CLOEXEC) == 0 && ::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  }
  const int rc = ::posix_spawn(&child->pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (control) {
    ::close(in[0]);
    ::close(out[1]);
    child->to_child_.Reset(in[1]);
    child->from_child_.Reset(out[0]);
  }
  if (rc != 0) return absl::ErrnoToStatus(rc, absl::StrCat("posix_spawn ", args[0]));
  std::lock_guard<std::mutex> lock(children_mu);
  children.push_back(child->pid_);
  return child;
}

ChildProcess::~ChildProcess() { Kill(); }

void ChildProcess::Kill() {
  if (pid_ < 0) return;
  {
    std::lock_guard<std::mutex> lock(children_mu);
    children.erase(std::remove(children.begin(), children.end(), pid_), children.end());
  }
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (pid_ >= 0) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("child still running");
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::FailedPreconditionError("no child");
}

bool ChildProcess::WriteLine(const std::string& line) {
  const std::string l = line + "\n";
  return ::write(to_child_.get(), l.data(), l.size()) == static_cast<ssize_t>(l.size());
}

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const size_t eol = buffered_.find('\n');
    if (eol != std::string::npos) {
      std::string line = buffered_.substr(0, eol);
      buffered_.erase(0, eol + 1);
      return line;
    }
    pollfd pfd = {from_child_.get(), POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0 || ::poll(&pfd, 1, ms) <= 0) return absl::DeadlineExceededError("no line");
    char buf[1024];
    const ssize_t n = ::read(from_child_.get(), buf, sizeof(buf));
    if (n <= 0) return absl::UnavailableError("the child closed its stdout");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartAgent(const std::string& dir,
                                                         const std::string& ring_mode) {
  const VmPaths vm(dir);
  const std::string log = dir + "/agent.log";
  struct stat before;
  const size_t from = ::stat(log.c_str(), &before) == 0 ? static_cast<size_t>(before.st_size) : 0;
  auto agent = ChildProcess::Spawn({Runfile("host_agent/host_agent"), "--guest-cid",
                                    absl::StrCat(kGuestCid), "--socket", vm.socket, "--uds-path",
                                    vm.uds, "--ring-mode", ring_mode},
                                   log, /*control=*/false);
  if (!agent.ok()) return agent.status();
  // The agent logs "ready" once its sockets listen (this run's line: a
  // restarted agent appends to the same log); the socket files alone
  // appear a moment earlier (at bind), when a connect is refused.
  if (!WaitForText(log, " ready: vhost-user socket", absl::Seconds(20), from)) {
    return absl::DeadlineExceededError("host_agent did not get ready (see agent.log)");
  }
  return agent;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartHostPeer(const std::string& dir) {
  const VmPaths vm(dir);
  auto peer = ChildProcess::Spawn({Runfile("tests/virtio_user/host_peer"), "--guest-cid",
                                   absl::StrCat(kGuestCid), "--socket", vm.socket, "--uds-path",
                                   vm.uds},
                                  dir + "/host_peer.log", /*control=*/true);
  if (!peer.ok()) return peer.status();
  auto ready = (*peer)->ReadLine(absl::Seconds(20));
  if (!ready.ok()) return ready.status();
  if (*ready != "READY") return absl::InternalError("host_peer said " + *ready);
  return peer;
}

// ---------------------------------------------------------------------------
// DriverThread

absl::StatusOr<std::unique_ptr<DriverThread>> DriverThread::Start(
    const std::string& socket, vsock::VsockDriverOptions options) {
  std::unique_ptr<DriverThread> t(new DriverThread());
  auto reactor = io::UringReactor::Create();
  if (!reactor.ok()) return reactor.status();
  t->reactor_ = *std::move(reactor);
  vsock::VirtioUserBusOptions bus_options;
  bus_options.socket_path = socket;
  auto bus = vsock::VirtioUserBus::Create(bus_options);
  if (!bus.ok()) return bus.status();
  options.engine.port_seed = static_cast<uint64_t>(::getpid()) * 7919;
  auto driver = vsock::VsockDriver::Create(*std::move(bus), *t->reactor_, options);
  if (!driver.ok()) return driver.status();
  t->driver_ = *std::move(driver);
  t->thread_ = std::thread([r = t->reactor_.get()] {
    absl::Status s = r->Run();
    VRPC_CHECK(s.ok()) << s;
  });
  return t;
}

DriverThread::~DriverThread() {
  if (!thread_.joinable()) {  // Start failed before the loop ran
    driver_.reset();
    return;
  }
  Call([this] { driver_.reset(); });
  reactor_->Stop();
  thread_.join();
}

bool DriverThread::WaitFor(std::function<bool()> pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Call([&] { return pred(); })) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

// ---------------------------------------------------------------------------
// Host side

HostServer::HostServer(const std::string& path, Serve serve)
    : path_(path), serve_(std::move(serve)) {
  listen_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  VRPC_CHECK(listen_.valid());
  ::unlink(path_.c_str());
  const sockaddr_un addr = UnixAddr(path_);
  VRPC_CHECK(::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0)
      << std::strerror(errno);
  VRPC_CHECK(::listen(listen_.get(), 1024) == 0);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HostServer::~HostServer() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  ::unlink(path_.c_str());
}

void HostServer::AcceptLoop() {
  while (!stop_) {
    pollfd pfd = {listen_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 20) <= 0) continue;
    UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) continue;
    SetIoTimeouts(fd.get());
    ++accepted_;
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([this, fd = std::make_shared<UniqueFd>(std::move(fd))] {
      HostConnResult r = serve_(fd->get());
      fd->Reset();
      std::lock_guard<std::mutex> lock(mu_);
      results_.push_back(r);
    });
  }
}

std::vector<HostConnResult> HostServer::results() {
  std::lock_guard<std::mutex> lock(mu_);
  return results_;
}

HostConnResult EchoAndCheck(int fd) {
  // The reader checks and queues; the writer sends back.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool done = false;
  HostConnResult result;
  std::thread writer([&] {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) break;
        chunk = std::move(queue.front());
        queue.pop_front();
      }
      if (!WriteAll(fd, reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size())) break;
      result.sent += chunk.size();
    }
    ::shutdown(fd, SHUT_WR);
  });
  std::string buf(1 << 20, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      result.eof = n == 0;
      break;
    }
    result.mismatches +=
        Mismatches(result.received, reinterpret_cast<const uint8_t*>(buf.data()), n);
    result.received += static_cast<uint64_t>(n);
    std::lock_guard<std::mutex> lock(mu);
    queue.emplace_back(buf.data(), static_cast<size_t>(n));
    cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_one();
  }
  writer.join();
  return result;
}

absl::StatusOr<UniqueFd> ConnectToGuest(const std::string& uds, uint32_t port,
                                        absl::Duration timeout) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SetIoTimeouts(fd.get());
  const sockaddr_un addr = UnixAddr(uds);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::ErrnoToStatus(errno, "connect " + uds);
  }
  const std::string line = absl::StrCat("CONNECT ", port, "\n");
  if (!WriteAll(fd.get(), reinterpret_cast<const uint8_t*>(line.data()), line.size())) {
    return absl::UnavailableError("writing CONNECT");
  }
  // Read "OK <n>\n" byte by byte: nothing of the stream may be consumed.
  std::string reply;
  const absl::Time deadline = absl::Now() + timeout;
  while (reply.empty() || reply.back() != '\n') {
    pollfd pfd = {fd.get(), POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0 || ::poll(&pfd, 1, ms) <= 0) return absl::DeadlineExceededError("no OK line");
    char c;
    if (::read(fd.get(), &c, 1) != 1) return absl::UnavailableError("refused: " + reply);
    reply.push_back(c);
    if (reply.size() > 64) return absl::InvalidArgumentError("bad reply " + reply);
  }
  if (reply != absl::StrCat("OK ", port, "\n")) {
    return absl::InvalidArgumentError("unexpected reply " + reply);
  }
  return fd;
}

absl::Status WritePattern(int fd, uint64_t bytes) {
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - off));
    vsock::ProbePatternFill(off, buf.data(), n);
    if (!WriteAll(fd, buf.data(), n)) return absl::ErrnoToStatus(errno, "send");
    off += n;
  }
  return absl::OkStatus();
}

HostConnResult ReadAndCheck(int fd) {
  HostConnResult result;
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      result.eof = n == 0;
      if (n < 0) VRPC_LOG(WARNING) << "host read: " << std::strerror(errno);
      return result;
    }
    result.mismatches += Mismatches(result.received, buf.data(), static_cast<size_t>(n));
    result.received += static_cast<uint64_t>(n);
  }
}

}  // namespace virtio_user_test
}  // namespace vrpc
