// vsock_selftest: runs INSIDE a QEMU test guest (never on the host). Checks
// the guest kernel's AF_VSOCK stream sockets end to end through one
// transport, by default vsock_loopback (CID 1, VMADDR_CID_LOCAL):
//
//   bulk_both_ways      listen, connect from another thread, move --bytes
//                       (default 1 MiB) in each direction at the same time,
//                       verify every byte, check EOF after SHUT_WR;
//   connect_no_listener connect to a port nobody listens on fails fast with
//                       ECONNRESET/ECONNREFUSED (not a connect timeout);
//   half_close          after the client's shutdown(SHUT_WR): the server reads
//                       EOF (repeatedly), the client's send fails with EPIPE,
//                       the server can still send and the client still reads
//                       all of it, then EOF when the server closes.
//
// Prints one "PASS <test> ..." or "FAIL <test>: ..." line per test and a
// summary; exits 0 only if every test passed (1 otherwise, 2 for bad
// arguments, 3 if the watchdog fired).
//
// Flags: --bytes=N --port=N (first of the ports used; default 5000)
//        --cid=N (peer CID for the connects; default 1 = VMADDR_CID_LOCAL;
//                 a guest's own CID also goes through the loopback transport)
//        --only=<test> --watchdog=<seconds per test, default 60>
//
// Plain libc + AF_VSOCK syscalls; built fully static by vrpc_guest_binary.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>
// After <sys/socket.h>: it uses struct sockaddr and sa_family_t.
#include <linux/vm_sockets.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/guest/stream_util.h"

#ifndef VMADDR_CID_LOCAL
#define VMADDR_CID_LOCAL 1
#endif

namespace vrpc {
namespace e2e {
namespace {

struct Flags {
  uint64_t bytes = 1 << 20;
  uint32_t port = 5000;
  uint32_t cid = VMADDR_CID_LOCAL;
  std::string only;
  unsigned watchdog_s = 60;
};

const char* volatile g_current_test = "startup";

void OnWatchdog(int) {
  char msg[256];
  int n = snprintf(msg, sizeof(msg), "FAIL %s: watchdog expired (test hung)\n",
                   g_current_test);
  if (n > 0) {
    ssize_t ignored = write(1, msg, static_cast<size_t>(n));
    (void)ignored;
  }
  _exit(3);
}

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

sockaddr_vm VsockAddr(uint32_t cid, uint32_t port) {
  sockaddr_vm addr;
  memset(&addr, 0, sizeof(addr));
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  return addr;
}

// Returns a listening socket or -1 with |*why| set.
int Listen(uint32_t port, std::string* why) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = "socket(AF_VSOCK): " + ErrnoString(errno);
    return -1;
  }
  sockaddr_vm addr = VsockAddr(VMADDR_CID_ANY, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *why = "bind(port " + std::to_string(port) + "): " + ErrnoString(errno);
    close(fd);
    return -1;
  }
  if (listen(fd, 16) != 0) {
    *why = "listen: " + ErrnoString(errno);
    close(fd);
    return -1;
  }
  return fd;
}

// Returns a connected socket, or -1 with errno set.
int Connect(uint32_t cid, uint32_t port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_vm addr = VsockAddr(cid, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

std::string Describe(const ReceiveResult& r) {
  std::string s = "received " + std::to_string(r.received) + " bytes";
  if (r.first_mismatch >= 0) s += ", first mismatch at offset " + std::to_string(r.first_mismatch);
  if (r.error != 0) s += ", read error " + ErrnoString(r.error);
  if (!r.eof) s += ", no EOF";
  return s;
}

// One endpoint's view of a bidirectional transfer.
struct EndResult {
  std::string setup_error;
  int send_errno = 0;
  ReceiveResult recv;
};

// Sends |bytes| of |send_seed| on a second thread (then SHUT_WR) while
// receiving |recv_seed| until EOF on this one.
void Exchange(int fd, uint64_t send_seed, uint64_t recv_seed, uint64_t bytes, EndResult* out) {
  std::thread sender([&] {
    if (SendPattern(fd, send_seed, bytes) != 0) {
      out->send_errno = errno;
    } else if (shutdown(fd, SHUT_WR) != 0) {
      out->send_errno = errno;
    }
  });
  out->recv = ReceivePattern(fd, recv_seed);
  sender.join();
}

bool CheckEnd(const char* who, const EndResult& r, uint64_t bytes, std::string* why) {
  if (!r.setup_error.empty()) {
    *why = std::string(who) + ": " + r.setup_error;
    return false;
  }
  if (r.send_errno != 0) {
    *why = std::string(who) + ": send failed: " + ErrnoString(r.send_errno);
    return false;
  }
  if (r.recv.received != bytes || r.recv.first_mismatch >= 0 || r.recv.error != 0 ||
      !r.recv.eof) {
    *why = std::string(who) + ": expected " + std::to_string(bytes) + " verified bytes then EOF; " +
           Describe(r.recv);
    return false;
  }
  return true;
}

bool TestBulkBothWays(const Flags& f, std::string* detail) {
  const uint32_t port = f.port;
  Fd listener(Listen(port, detail));
  if (listener.get() < 0) return false;

  EndResult client, server;
  std::thread client_thread([&] {
    Fd c(Connect(f.cid, port));
    if (c.get() < 0) {
      client.setup_error = "connect(cid " + std::to_string(f.cid) + ", port " +
                           std::to_string(port) + "): " + ErrnoString(errno);
      return;
    }
    Exchange(c.get(), /*send_seed=*/1, /*recv_seed=*/2, f.bytes, &client);
  });

  const double t0 = NowSeconds();
  Fd s(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (s.get() < 0) {
    server.setup_error = "accept: " + ErrnoString(errno);
    listener.reset();  // unblocks nothing, but the client fails on its own
  } else {
    sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    if (getpeername(s.get(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
      server.setup_error = "getpeername: " + ErrnoString(errno);
    } else if (f.cid == VMADDR_CID_LOCAL && peer.svm_cid != VMADDR_CID_LOCAL) {
      server.setup_error = "peer CID is " + std::to_string(peer.svm_cid) + ", expected 1";
    } else {
      Exchange(s.get(), /*send_seed=*/2, /*recv_seed=*/1, f.bytes, &server);
    }
  }
  client_thread.join();
  const double secs = NowSeconds() - t0;

  if (!CheckEnd("client", client, f.bytes, detail)) return false;
  if (!CheckEnd("server", server, f.bytes, detail)) return false;
  char buf[160];
  snprintf(buf, sizeof(buf), "%llu bytes each way verified in %.3f s (%.1f MiB/s per direction)",
           static_cast<unsigned long long>(f.bytes), secs,
           secs > 0 ? static_cast<double>(f.bytes) / secs / (1 << 20) : 0.0);
  *detail = buf;
  return true;
}

bool TestConnectNoListener(const Flags& f, std::string* detail) {
  const uint32_t port = f.port + 1;  // nobody listens here
  const double t0 = NowSeconds();
  int fd = Connect(f.cid, port);
  const int err = errno;
  const double secs = NowSeconds() - t0;
  if (fd >= 0) {
    close(fd);
    *detail = "connect to port " + std::to_string(port) + " without a listener succeeded";
    return false;
  }
  char buf[160];
  snprintf(buf, sizeof(buf), "connect failed with %s after %.3f s", ErrnoString(err).c_str(), secs);
  *detail = buf;
  if (err != ECONNRESET && err != ECONNREFUSED) {
    *detail += " (expected ECONNRESET or ECONNREFUSED)";
    return false;
  }
  // The connect timeout is 2 s (VSOCK_DEFAULT_CONNECT_TIMEOUT); a reset
  // must arrive well before it even on a slow emulated CPU.
  if (secs > 1.5) {
    *detail += " (too slow: should fail fast on the peer's RST)";
    return false;
  }
  return true;
}

bool TestHalfClose(const Flags& f, std::string* detail) {
  const uint32_t port = f.port + 2;
  const uint64_t request = 64 * 1024, response = 96 * 1024;
  Fd listener(Listen(port, detail));
  if (listener.get() < 0) return false;

  std::string client_error;
  std::thread client_thread([&] {
    Fd c(Connect(f.cid, port));
    if (c.get() < 0) {
      client_error = "connect: " + ErrnoString(errno);
      return;
    }
    if (SendPattern(c.get(), 3, request) != 0) {
      client_error = "send request: " + ErrnoString(errno);
      return;
    }
    if (shutdown(c.get(), SHUT_WR) != 0) {
      client_error = "shutdown(SHUT_WR): " + ErrnoString(errno);
      return;
    }
    char byte = 'x';
    ssize_t n = send(c.get(), &byte, 1, MSG_NOSIGNAL);
    if (n >= 0 || errno != EPIPE) {
      client_error = "send after SHUT_WR returned " + std::to_string(n) +
                     (n < 0 ? " errno " + ErrnoString(errno) : std::string()) +
                     ", expected EPIPE";
      return;
    }
    ReceiveResult r = ReceivePattern(c.get(), 4);
    if (r.received != response || r.first_mismatch >= 0 || r.error != 0 || !r.eof) {
      client_error = "reading the response after SHUT_WR: expected " +
                     std::to_string(response) + " bytes then EOF; " + Describe(r);
    }
  });

  std::string server_error;
  Fd s(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (s.get() < 0) {
    server_error = "accept: " + ErrnoString(errno);
  } else {
    ReceiveResult r = ReceivePattern(s.get(), 3);
    if (r.received != request || r.first_mismatch >= 0 || r.error != 0 || !r.eof) {
      server_error = "reading the request: expected " + std::to_string(request) +
                     " bytes then EOF; " + Describe(r);
    } else {
      char byte;
      ssize_t again = read(s.get(), &byte, 1);
      if (again != 0) {
        server_error = "second read after the peer's SHUT_WR returned " + std::to_string(again) +
                       ", expected 0 (EOF)";
      } else if (SendPattern(s.get(), 4, response) != 0) {
        server_error = "sending the response after the peer's SHUT_WR: " + ErrnoString(errno);
      }
    }
    s.reset();  // close: the client sees EOF after the response
  }
  client_thread.join();
  if (!server_error.empty()) {
    *detail = "server: " + server_error;
    return false;
  }
  if (!client_error.empty()) {
    *detail = "client: " + client_error;
    return false;
  }
  *detail = std::to_string(request) + " bytes, SHUT_WR, EOF seen twice, EPIPE on send, " +
            std::to_string(response) + " bytes back, EOF on close";
  return true;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name, std::string* v) {
      std::string prefix = std::string("--") + name + "=";
      if (a.compare(0, prefix.size(), prefix) != 0) return false;
      *v = a.substr(prefix.size());
      return true;
    };
    std::string v;
    if (value("bytes", &v)) {
      f->bytes = strtoull(v.c_str(), nullptr, 0);
    } else if (value("port", &v)) {
      f->port = static_cast<uint32_t>(strtoul(v.c_str(), nullptr, 0));
    } else if (value("cid", &v)) {
      f->cid = static_cast<uint32_t>(strtoul(v.c_str(), nullptr, 0));
    } else if (value("only", &v)) {
      f->only = v;
    } else if (value("watchdog", &v)) {
      f->watchdog_s = static_cast<unsigned>(strtoul(v.c_str(), nullptr, 0));
    } else {
      fprintf(stderr, "vsock_selftest: unknown argument '%s'\n", a.c_str());
      return false;
    }
  }
  return f->bytes > 0;
}

void PrintInfo() {
  struct utsname u;
  if (uname(&u) == 0) printf("vsock_selftest: kernel %s\n", u.release);
  int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    unsigned int cid = 0;
    if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) == 0) {
      printf("vsock_selftest: local CID %u%s\n", cid,
             cid == VMADDR_CID_ANY ? " (no guest-to-host transport device)" : "");
    }
    close(fd);
  }
}

int Main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) return 2;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, OnWatchdog);
  PrintInfo();

  struct Test {
    const char* name;
    bool (*fn)(const Flags&, std::string*);
  };
  const Test tests[] = {
      {"bulk_both_ways", TestBulkBothWays},
      {"connect_no_listener", TestConnectNoListener},
      {"half_close", TestHalfClose},
  };
  int run = 0, failed = 0;
  for (const Test& t : tests) {
    if (!f.only.empty() && f.only != t.name) continue;
    ++run;
    g_current_test = t.name;
    alarm(f.watchdog_s);
    std::string detail;
    const bool ok = t.fn(f, &detail);
    alarm(0);
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", t.name, ok ? ": " : ": ", detail.c_str());
    if (!ok) ++failed;
  }
  if (run == 0) {
    fprintf(stderr, "vsock_selftest: no test named '%s'\n", f.only.c_str());
    return 2;
  }
  if (failed == 0) {
    printf("vsock_selftest: ALL %d TESTS PASSED\n", run);
    return 0;
  }
  printf("vsock_selftest: %d OF %d TESTS FAILED\n", failed, run);
  return 1;
}

}  // namespace
}  // namespace e2e
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::e2e::Main(argc, argv); }
