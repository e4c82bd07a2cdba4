// vsock_device_guest: runs INSIDE a QEMU test guest whose virtio-vsock device
// is vrpc's vhost-user device (never on the host). It uses the guest
// kernel's own AF_VSOCK driver, so the device is proven against code we did
// not write. Steps run in order, each an argument:
//
//   client:PORT:BYTES   connect to the host (CID 2) port PORT; send BYTES of
//                       stream 101 then SHUT_WR, while receiving stream 102
//                       until EOF; both verified, BYTES each way;
//   server:PORT:BYTES   listen on PORT, print "vrpc-listening PORT", accept
//                       one connection; receive stream 201 until EOF while
//                       sending BYTES of stream 202; both verified;
//   refused:PORT        connect to host port PORT where nothing listens:
//                       must fail with ECONNRESET/ECONNREFUSED within 5 s;
//   flood:PORT          connect and send stream 101 forever (killed by the
//                       test).
//
// Prints "PASS <step> ..." / "FAIL <step>: ..." per step and exits 0 only if
// every step passed. Plain libc + AF_VSOCK; built fully static.
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
// After <sys/socket.h>: it uses struct sockaddr and sa_family_t.
#include <linux/vm_sockets.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/guest/stream_util.h"

namespace {

using vrpc::e2e::NowSeconds;
using vrpc::e2e::ReceivePattern;
using vrpc::e2e::ReceiveResult;
using vrpc::e2e::SendPattern;

sockaddr_vm VsockAddr(uint32_t cid, uint32_t port) {
  sockaddr_vm addr;
  memset(&addr, 0, sizeof(addr));
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  return addr;
}

bool Fail(const std::string& step, const std::string& why) {
  printf("FAIL %s: %s (errno %d %s)\n", step.c_str(), why.c_str(), errno, strerror(errno));
  fflush(stdout);
  return false;
}

// Sends |bytes| of |send_seed| then SHUT_WR while receiving |recv_seed|.
bool Exchange(const std::string& step, int fd, uint64_t bytes, uint64_t send_seed,
              uint64_t recv_seed) {
  const double start = NowSeconds();
  int send_rc = 0;
  int send_errno = 0;
  std::thread sender([&] {
    send_rc = SendPattern(fd, send_seed, bytes);
    send_errno = errno;
    shutdown(fd, SHUT_WR);
  });
  ReceiveResult r = ReceivePattern(fd, recv_seed);
  sender.join();
  const double secs = NowSeconds() - start;
  if (send_rc != 0) {
    errno = send_errno;
    return Fail(step, "send failed");
  }
  if (r.first_mismatch >= 0) {
    return Fail(step, "received data differs at offset " + std::to_string(r.first_mismatch));
  }
  if (r.received != bytes || !r.eof) {
    errno = r.error;
    return Fail(step, "received " + std::to_string(r.received) + " of " +
                          std::to_string(bytes) + " bytes");
  }
  printf("PASS %s bytes=%llu each way, %.1f s, %.2f MB/s per direction\n", step.c_str(),
         static_cast<unsigned long long>(bytes), secs, bytes / secs / 1e6);
  fflush(stdout);
  return true;
}

bool Client(const std::string& step, uint32_t port, uint64_t bytes) {
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  sockaddr_vm addr = VsockAddr(VMADDR_CID_HOST, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Fail(step, "connect");
  }
  const bool ok = Exchange(step, fd, bytes, 101, 102);
  close(fd);
  return ok;
}

bool Server(const std::string& step, uint32_t port, uint64_t bytes) {
  int lfd = socket(AF_VSOCK, SOCK_STREAM, 0);
  sockaddr_vm addr = VsockAddr(VMADDR_CID_ANY, port);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return Fail(step, "bind");
  if (listen(lfd, 4) != 0) return Fail(step, "listen");
  printf("vrpc-listening %u\n", port);
  fflush(stdout);
  pollfd p{lfd, POLLIN, 0};
  if (poll(&p, 1, 90000) != 1) return Fail(step, "no host connection within 90 s");
  sockaddr_vm peer;
  socklen_t len = sizeof(peer);
  int fd = accept(lfd, reinterpret_cast<sockaddr*>(&peer), &len);
  if (fd < 0) return Fail(step, "accept");
  if (peer.svm_cid != VMADDR_CID_HOST) return Fail(step, "peer is not the host");
  const bool ok = Exchange(step, fd, bytes, 202, 201);
  close(fd);
  close(lfd);
  return ok;
}

bool Refused(const std::string& step, uint32_t port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  sockaddr_vm addr = VsockAddr(VMADDR_CID_HOST, port);
  const double start = NowSeconds();
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  const double secs = NowSeconds() - start;
  close(fd);
  if (rc == 0) return Fail(step, "connect succeeded");
  if (err != ECONNRESET && err != ECONNREFUSED) return Fail(step, "wrong error");
  if (secs > 5) return Fail(step, "took " + std::to_string(secs) + " s");
  printf("PASS %s failed in %.3f s with %s\n", step.c_str(), secs, strerror(err));
  fflush(stdout);
  return true;
}

bool Flood(const std::string& step, uint32_t port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  sockaddr_vm addr = VsockAddr(VMADDR_CID_HOST, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Fail(step, "connect");
  }
  printf("vrpc-flooding %u\n", port);
  fflush(stdout);
  SendPattern(fd, 101, ~uint64_t{0} >> 1);
  return Fail(step, "flood ended");
}

}  // namespace

int main(int argc, char** argv) {
  bool all = true;
  for (int i = 1; i < argc; ++i) {
    const std::string step = argv[i];
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      const size_t colon = step.find(':', start);
      f.push_back(step.substr(start, colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    const uint32_t port = f.size() > 1 ? static_cast<uint32_t>(strtoul(f[1].c_str(), nullptr, 10)) : 0;
    const uint64_t bytes = f.size() > 2 ? strtoull(f[2].c_str(), nullptr, 10) : 0;
    bool ok;
    if (f[0] == "client" && f.size() == 3) {
      ok = Client(step, port, bytes);
    } else if (f[0] == "server" && f.size() == 3) {
      ok = Server(step, port, bytes);
    } else if (f[0] == "refused" && f.size() == 2) {
      ok = Refused(step, port);
    } else if (f[0] == "flood" && f.size() == 2) {
      ok = Flood(step, port);
    } else {
      fprintf(stderr, "bad step %s\n", step.c_str());
      return 2;
    }
    all = all && ok;
  }
  printf("%s\n", all ? "ALL PASSED" : "SOME FAILED");
  return all ? 0 : 1;
}
