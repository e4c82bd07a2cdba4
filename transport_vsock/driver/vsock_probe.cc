// vsock_probe: exercises vrpc's userspace virtio-vsock guest driver.
//
//   vsock_probe --bus=virtio-user:/tmp/vm3.vsock connect 2 5000 67108864
//   vsock_probe --bus=virtio-user:/tmp/vm3.vsock serve 6000 4
//   vsock_probe --bus=uio:0000:00:04.0 --bind --queue-size=128 connect 2 5000 4194304
//   vsock_probe --bus=vfio:0000:00:04.0 --bind serve 6000 1
//
// connect sends BYTES of a pattern to CID:PORT, expects them echoed back,
// verifies them and prints the throughput; serve echoes COUNT connections.
// Exit status: 0 verified success, 1 failure, 2 bad usage (including a
// uio:/vfio: address that names no virtio-vsock PCI function, or one not
// bound to the bus's driver without --bind: the probe never rebinds another
// device).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/base/logging.h"
#include "core/io/uring_reactor.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/pci/sysfs.h"
#include "transport_vsock/driver/probe_options.h"
#include "transport_vsock/driver/uio_bus.h"
#include "transport_vsock/driver/vfio_bus.h"
#include "transport_vsock/driver/virtio_user_bus.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace vsock {
namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "vsock_probe: %s\n", what.c_str());
  return 1;
}

// For uio:/vfio:, the empty string if |o.bus_address| names a virtio-vsock
// PCI function that the probe may use (bound to the bus's driver, or
// --bind); else why not.
std::string CheckPciFunction(const ProbeOptions& o) {
  const char* driver = o.bus == ProbeBusKind::kUio ? "uio_pci_generic" : "vfio-pci";
  auto sysfs = pci::PciSysfs::Open("/sys", o.bus_address);
  if (!sysfs.ok()) return std::string(sysfs.status().message());
  auto vendor = pci::ReadSmallFile(sysfs->dir() + "/vendor");
  auto device = pci::ReadSmallFile(sysfs->dir() + "/device");
  if (!vendor.ok() || !device.ok()) return "no PCI function " + o.bus_address;
  if (!absl::StartsWith(*vendor, "0x1af4") || !absl::StartsWith(*device, "0x1053")) {
    return o.bus_address + " is not a virtio-vsock function (1af4:1053)";
  }
  auto bound = sysfs->Driver();
  if (!o.bind && (!bound.ok() || *bound != driver)) {
    return absl::StrCat(o.bus_address, " is not bound to ", driver, " (pass --bind)");
  }
  return "";
}

absl::StatusOr<std::unique_ptr<Bus>> MakeBus(const ProbeOptions& o) {
  if (o.bus == ProbeBusKind::kUio) {
    UioBusOptions options;
    options.pci_address = o.bus_address;
    options.bind = o.bind;
    auto bus = UioBus::Create(options);
    if (!bus.ok()) return bus.status();
    return std::unique_ptr<Bus>(*std::move(bus));
  }
  if (o.bus == ProbeBusKind::kVfio) {
    VfioBusOptions options;
    options.pci_address = o.bus_address;
    options.bind = o.bind;
    auto bus = VfioBus::Create(options);
    if (!bus.ok()) return bus.status();
    return std::unique_ptr<Bus>(*std::move(bus));
  }
  VirtioUserBusOptions options;
  options.socket_path = o.bus_address;
  auto bus = VirtioUserBus::Create(options);
  if (!bus.ok()) return bus.status();
  return std::unique_ptr<Bus>(*std::move(bus));
}

absl::StatusOr<std::unique_ptr<VsockDriver>> StartDriver(const ProbeOptions& o,
                                                         io::Reactor& reactor) {
  auto bus = MakeBus(o);
  if (!bus.ok()) return bus.status();
  VsockDriverOptions options;
  options.notify_mode = o.mode;
  options.rx_buffer_size = o.rx_buffer_size;
  options.queue_size = o.queue_size;
  // Ephemeral ports differ between runs (the host may remember old ones).
  options.engine.port_seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
                             static_cast<uint64_t>(::getpid());
  return VsockDriver::Create(*std::move(bus), reactor, options);
}

int RunConnect(const ProbeOptions& o, io::UringReactor& reactor, VsockDriver& driver) {
  auto connector = driver.ConnectorTo(o.cid, o.port);
  if (!connector.ok()) return Fail(connector.status().ToString());
  absl::Status result = absl::DeadlineExceededError("timed out");
  EchoClient client(**connector, o.bytes, [&](absl::Status s) {
    result = std::move(s);
    reactor.Stop();
  });
  if (absl::Status s = reactor.Run(); !s.ok()) return Fail(s.ToString());
  if (!result.ok()) {
    if (const transport::Connection* c = client.connection(); c != nullptr) {
      const transport::CreditInfo credit = c->credit();
      std::fprintf(stderr,
                   "vsock_probe: %llu of %llu bytes echoed; written %llu; peer credit %u "
                   "(buf_alloc %u, fwd_cnt %u, tx_cnt %u)%s\n",
                   static_cast<unsigned long long>(client.received()),
                   static_cast<unsigned long long>(o.bytes),
                   static_cast<unsigned long long>(c->stats().bytes_written), credit.peer_credit,
                   credit.peer_buf_alloc, credit.peer_fwd_cnt, credit.tx_cnt,
                   credit.blocked ? ", blocked" : "");
    }
    return Fail(result.ToString());
  }
  const double seconds = absl::ToDoubleSeconds(client.elapsed());
  const auto stats = client.connection()->stats();
  std::printf(
      "connect: %llu bytes to %llu:%u echoed and verified in %.3f s: %.1f MB/s each way "
      "(tx copied %llu, rx copied %llu bytes)\n",
      static_cast<unsigned long long>(o.bytes), static_cast<unsigned long long>(o.cid), o.port,
      seconds, seconds > 0 ? static_cast<double>(o.bytes) / seconds / 1e6 : 0.0,
      static_cast<unsigned long long>(stats.tx_bytes_copied),
      static_cast<unsigned long long>(stats.rx_bytes_copied));
  return 0;
}

int RunServe(const ProbeOptions& o, io::UringReactor& reactor, VsockDriver& driver) {
  auto listener = driver.Listen(o.port);
  if (!listener.ok()) return Fail(listener.status().ToString());
  absl::Status result = absl::DeadlineExceededError("timed out");
  std::printf("serve: listening on vsock port %u (guest CID %llu)\n", o.port,
              static_cast<unsigned long long>(driver.guest_cid()));
  std::fflush(stdout);
  EchoServer server(*std::move(listener), o.count, [&](absl::Status s) {
    result = std::move(s);
    reactor.Stop();
  });
  if (absl::Status s = reactor.Run(); !s.ok()) return Fail(s.ToString());
  if (!result.ok()) return Fail(result.ToString());
  std::printf("serve: echoed %llu connections, %llu bytes\n",
              static_cast<unsigned long long>(o.count),
              static_cast<unsigned long long>(server.echoed_bytes()));
  return 0;
}

int Main(int argc, char** argv) {
  auto options = ParseProbeOptions(std::vector<std::string>(argv + 1, argv + argc));
  if (!options.ok()) {
    std::fprintf(stderr, "vsock_probe: %s\n\n%s", std::string(options.status().message()).c_str(),
                 ProbeUsage().c_str());
    return 2;
  }
  if (options->help) {
    std::printf("%s", ProbeUsage().c_str());
    return 0;
  }
  if (options->bus != ProbeBusKind::kVirtioUser) {
    if (const std::string why = CheckPciFunction(*options); !why.empty()) {
      std::fprintf(stderr, "vsock_probe: --bus=%s:%s: %s\n",
                   options->bus == ProbeBusKind::kUio ? "uio" : "vfio",
                   options->bus_address.c_str(), why.c_str());
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto reactor = io::UringReactor::Create();
  if (!reactor.ok()) return Fail(reactor.status().ToString());
  auto driver = StartDriver(*options, **reactor);
  if (!driver.ok()) return Fail(driver.status().ToString());
  (*reactor)->RunAfter(options->timeout, [&] { (*reactor)->Stop(); });
  const int rc = options->command == ProbeCommand::kConnect ? RunConnect(*options, **reactor, **driver)
                                                            : RunServe(*options, **reactor, **driver);
  const VsockDriverStats s = (*driver)->stats();
  const std::string summary = absl::StrFormat(
      "driver: %d rx / %d tx packets, %d kicks, %d interrupts, %d polls, %d device losses",
      s.rx_packets, s.tx_packets, s.kicks, s.interrupts, s.polls, s.device_losses);
  if (rc != 0) {
    VRPC_LOG(INFO) << summary << "; " << (*driver)->DebugString();
  } else {
    VRPC_LOG(DEBUG) << summary;
  }
  return rc;
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::vsock::Main(argc, argv); }
