// File: tests/virtio_user/harness.h
//
// Two-process virtio-user tests (testing ladder rung 3): vrpc's guest driver
// in the test process, vrpc's vhost-user vsock device in a host_agent child
// process, real shared memory (memfd), eventfds and vhost-user socket.
//
//   AgentProcess   the host_agent binary (a data dependency), started on a
//                  socket path in a private /tmp directory; killed at will.
//   DriverThread   a VsockDriver over a VirtioUserBus on its own
//                  UringReactor thread; tests run code there with Call().
//   HostServer     the host's end of guest connections to port P: the
//                  agent forwards them to the Unix socket <uds>_P, where
//                  this serves each connection on a thread.
//   ConnectToGuest the host's end of connections to a guest port: the
//                  hybrid "CONNECT <port>\n" / "OK <port>\n" handshake.
//
// Test-only; environment errors CHECK-fail or come back as Status.
#ifndef VRPC_TESTS_VIRTIO_USER_HARNESS_H_
#define VRPC_TESTS_VIRTIO_USER_HARNESS_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/logging.h"
#include "core/base/unique_fd.h"
#include "core/io/uring_reactor.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace virtio_user_test {

inline constexpr uint64_t kGuestCid = 3;

// A private directory under /tmp (Unix socket paths must stay short),
// removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The path of a runfile of this workspace ("host_agent/host_agent").
std::string Runfile(const std::string& path);

// Prints every thread's stack of this process and of the children started
// through ChildProcess (gdb), for diagnosing a hang.
void DumpStacks();

// Waits until the file at |path| contains |text| at or after byte |from|
// (or |timeout| passes).
bool WaitForText(const std::string& path, const std::string& text, absl::Duration timeout,
                 size_t from = 0);

// A child process: one of this workspace's binaries (a data dependency),
// its stderr appended to a log file; optionally with its stdin and stdout
// as line-based control pipes.
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(std::vector<std::string> argv,
                                                             const std::string& log,
                                                             bool control);
  ~ChildProcess();  // Kill()

  // SIGKILL and reap; idempotent.
  void Kill();
  // Waits for the child to exit; its exit status (128 + signal if killed).
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // Control pipes (Spawn with |control|).
  bool WriteLine(const std::string& line);
  // The next line without its newline; kDeadlineExceeded / kUnavailable.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout = absl::Seconds(30));

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  UniqueFd to_child_, from_child_;
  std::string buffered_;
};

// The VM's sockets under |dir|.
struct VmPaths {
  explicit VmPaths(const std::string& dir) : socket(dir + "/vm.vsock"), uds(dir + "/vm.sock") {}
  std::string socket;  // vhost-user
  std::string uds;     // hybrid
};

// host_agent --guest-cid 3 --socket .. --uds-path .. --ring-mode MODE, once
// both sockets exist.
absl::StatusOr<std::unique_ptr<ChildProcess>> StartAgent(const std::string& dir,
                                                         const std::string& ring_mode = "interrupt");
// tests/virtio_user/host_peer (VmServer + in-process echo / sink / connect
// commands; see host_peer.cc), once it said READY.
absl::StatusOr<std::unique_ptr<ChildProcess>> StartHostPeer(const std::string& dir);

class DriverThread {
 public:
  // Creates the reactor and the driver (on the new thread) and starts it.
  static absl::StatusOr<std::unique_ptr<DriverThread>> Start(
      const std::string& socket, vsock::VsockDriverOptions options = {});
  // Destroys the driver on its thread, then stops and joins.
  ~DriverThread();

  // Runs |fn| on the reactor thread and returns its result.
  template <typename F>
  auto Call(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    std::packaged_task<R()> task(std::move(fn));
    std::future<R> result = task.get_future();
    reactor_->Post([&task] { task(); });
    // A stuck reactor thread fails the test here instead of hanging it.
    if (result.wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
      DumpStacks();
      VRPC_CHECK(false) << "the driver's reactor thread did not run a call within 120 s";
    }
    return result.get();
  }
  // Waits (polling on the reactor thread) until |pred| holds; false on
  // timeout.
  bool WaitFor(std::function<bool()> pred, absl::Duration timeout);

  vsock::VsockDriver& driver() { return *driver_; }
  io::UringReactor& reactor() { return *reactor_; }

 private:
  DriverThread() = default;
  std::unique_ptr<io::UringReactor> reactor_;
  std::unique_ptr<vsock::VsockDriver> driver_;
  std::thread thread_;
};

// What one host-side connection saw.
struct HostConnResult {
  uint64_t received = 0;
  uint64_t sent = 0;
  uint64_t mismatches = 0;  // bytes not matching the probe pattern
  bool eof = false;
};

// Serves the Unix socket <uds>_<port>: each accepted connection runs
// |serve(fd)| on its own thread.
class HostServer {
 public:
  using Serve = std::function<HostConnResult(int fd)>;
  HostServer(const std::string& path, Serve serve);
  ~HostServer();  // stops accepting, joins every connection thread

  std::vector<HostConnResult> results();  // of finished connections
  int accepted() const { return accepted_; }

 private:
  void AcceptLoop();
  std::string path_;
  UniqueFd listen_;
  Serve serve_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<HostConnResult> results_;
};

// Full-duplex echo of |fd| until EOF, checking that the bytes follow the
// probe pattern (vsock_probe / EchoClient) from offset 0; then shuts down
// writing. Uses a reader and a writer thread so neither direction waits
// for the other.
HostConnResult EchoAndCheck(int fd);

// Connects to the hybrid socket |uds| and asks for guest |port|. Returns the
// connected socket once "OK <port>\n" arrived.
absl::StatusOr<UniqueFd> ConnectToGuest(const std::string& uds, uint32_t port,
                                        absl::Duration timeout = absl::Seconds(10));

// Writes the probe pattern [0, bytes) to |fd| (blocking).
absl::Status WritePattern(int fd, uint64_t bytes);
// Reads |fd| until EOF, checking the probe pattern; returns the count.
HostConnResult ReadAndCheck(int fd);

}  // namespace virtio_user_test
}  // namespace vrpc

#endif  // VRPC_TESTS_VIRTIO_USER_HARNESS_H_
