// Runs INSIDE a QEMU guest (tests/e2e:uio_vsock_e2e_test): vrpc's userspace
// virtio-vsock driver over UioBus, with no kernel vsock driver on the
// device. Binds the virtio-vsock PCI function to uio_pci_generic, then
//   1. connects to host CID 2 port CONNECT_PORT, sends BYTES of the probe
//      pattern, and verifies the echo (EchoClient);
//   2. listens on SERVE_PORT, prints "vrpc-uio-listening SERVE_PORT", and
//      echoes one connection (EchoServer).
//
//   uio_vsock_guest [--pci=DDDD:BB:DD.F] [--mode=interrupt|poll|adaptive]
//                   CONNECT_PORT BYTES SERVE_PORT
//
// Prints "PASS connect" / "PASS serve" and the driver's counters; exit 0
// only if both passed.
#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/io/uring_reactor.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/uio_bus.h"
#include "transport_vsock/driver/vsock_driver.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The first PCI function with vendor 1af4 and device 1053.
std::string FindVsockFunction() {
  const std::string root = "/sys/bus/pci/devices";
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) return "";
  std::string found;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string dir = root + "/" + e->d_name;
    if (absl::StartsWith(ReadFile(dir + "/vendor"), "0x1af4") &&
        absl::StartsWith(ReadFile(dir + "/device"), "0x1053")) {
      found = e->d_name;
    }
  }
  ::closedir(d);
  return found;
}

int Fail(const std::string& what) {
  std::printf("FAIL %s\n", what.c_str());
  return 1;
}

int Main(int argc, char** argv) {
  std::string pci;
  vsock::DriverNotifyMode mode = vsock::DriverNotifyMode::kInterrupt;
  int arg = 1;
  for (; arg < argc && absl::StartsWith(argv[arg], "--"); ++arg) {
    const absl::string_view flag = argv[arg];
    if (absl::StartsWith(flag, "--pci=")) {
      pci = std::string(flag.substr(6));
    } else if (absl::StartsWith(flag, "--mode=")) {
      auto m = vsock::ParseDriverNotifyMode(flag.substr(7));
      if (!m.ok()) return Fail(m.status().ToString());
      mode = *m;
    } else {
      return Fail(absl::StrCat("unknown flag ", flag));
    }
  }
  uint32_t connect_port = 0, serve_port = 0;
  uint64_t bytes = 0;
  if (argc - arg != 3 || !absl::SimpleAtoi(argv[arg], &connect_port) ||
      !absl::SimpleAtoi(argv[arg + 1], &bytes) || !absl::SimpleAtoi(argv[arg + 2], &serve_port)) {
    return Fail("usage: uio_vsock_guest [--pci=ADDR] [--mode=M] CONNECT_PORT BYTES SERVE_PORT");
  }
  if (pci.empty()) pci = FindVsockFunction();
  if (pci.empty()) return Fail("no virtio-vsock PCI function (1af4:1053)");
  const std::string hugepages = ReadFile("/proc/sys/vm/nr_hugepages");
  std::printf("uio_vsock_guest: function %s, %s hugepages\n", pci.c_str(),
              std::string(absl::StripAsciiWhitespace(hugepages)).c_str());

  vsock::UioBusOptions bus_options;
  bus_options.pci_address = pci;
  bus_options.bind = true;  // inside the test guest only
  auto bus = vsock::UioBus::Create(bus_options);
  if (!bus.ok()) return Fail(absl::StrCat("UioBus: ", bus.status().ToString()));
  std::printf("uio_vsock_guest: bound, %s\n", (*bus)->uio_path().c_str());
  auto reactor = io::UringReactor::Create();
  if (!reactor.ok()) return Fail(reactor.status().ToString());
  vsock::VsockDriverOptions options;
  options.queue_size = 128;  // QEMU's vhost-user-vsock rings
  options.notify_mode = mode;
  options.engine.port_seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  auto driver = vsock::VsockDriver::Create(*std::move(bus), **reactor, options);
  if (!driver.ok()) return Fail(absl::StrCat("driver: ", driver.status().ToString()));
  std::printf("uio_vsock_guest: driver up, guest CID %llu\n",
              static_cast<unsigned long long>((*driver)->guest_cid()));
  std::fflush(stdout);

  absl::Status client_result = absl::DeadlineExceededError("connect timed out");
  absl::Status server_result = absl::DeadlineExceededError("serve timed out");
  std::unique_ptr<vsock::EchoClient> client;
  std::unique_ptr<vsock::EchoServer> server;
  auto connector = (*driver)->ConnectorTo(vsock::kCidHost, connect_port);
  if (!connector.ok()) return Fail(connector.status().ToString());
  client = std::make_unique<vsock::EchoClient>(**connector, bytes, [&](absl::Status s) {
    client_result = std::move(s);
    std::printf("%s connect:%u %llu bytes echoed %s\n", client_result.ok() ? "PASS" : "FAIL",
                connect_port, static_cast<unsigned long long>(bytes),
                client_result.ToString().c_str());
    auto listener = (*driver)->Listen(serve_port);
    if (!listener.ok()) {
      server_result = listener.status();
      return (*reactor)->Stop();
    }
    std::printf("vrpc-uio-listening %u\n", serve_port);
    std::fflush(stdout);
    server = std::make_unique<vsock::EchoServer>(*std::move(listener), 1, [&](absl::Status s) {
      server_result = std::move(s);
      (*reactor)->Stop();
    });
  });
  (*reactor)->RunAfter(absl::Seconds(240), [&] { (*reactor)->Stop(); });
  if (absl::Status s = (*reactor)->Run(); !s.ok()) return Fail(s.ToString());
  std::printf("%s serve:%u %llu bytes %s\n", server_result.ok() ? "PASS" : "FAIL", serve_port,
              static_cast<unsigned long long>(server ? server->echoed_bytes() : 0),
              server_result.ToString().c_str());
  const vsock::VsockDriverStats st = (*driver)->stats();
  std::printf("uio_vsock_guest: %llu rx / %llu tx packets, %llu kicks, %llu interrupts, "
              "%llu polls, %llu device losses\n",
              static_cast<unsigned long long>(st.rx_packets),
              static_cast<unsigned long long>(st.tx_packets),
              static_cast<unsigned long long>(st.kicks),
              static_cast<unsigned long long>(st.interrupts),
              static_cast<unsigned long long>(st.polls),
              static_cast<unsigned long long>(st.device_losses));
  if (!client_result.ok() || !server_result.ok()) {
    std::printf("%s\n", (*driver)->DebugString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::Main(argc, argv); }
