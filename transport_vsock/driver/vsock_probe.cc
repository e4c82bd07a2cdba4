// vsock_probe: exercises vrpc's userspace virtio-vsock guest driver.
//
//   vsock_probe --bus=virtio-user:/tmp/vm3.vsock connect 2 5000 67108864
//   vsock_probe --bus=virtio-user:/tmp/vm3.vsock serve 6000 4
//
// connect sends BYTES of a pattern to CID:PORT, expects them echoed back,
// verifies them and prints the throughput; serve echoes COUNT connections.
// Exit status: 0 verified success, 1 failure, 2 bad usage (or a bus that is
// not built yet).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/base/logging.h"
#include "core/io/uring_reactor.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/probe_options.h"
#include "transport_vsock/driver/virtio_user_bus.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace vsock {
namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "vsock_probe: %s\n", what.c_str());
  return 1;
}

absl::StatusOr<std::unique_ptr<VsockDriver>> StartDriver(const ProbeOptions& o,
                                                         io::Reactor& reactor) {
  VirtioUserBusOptions bus_options;
  bus_options.socket_path = o.bus_address;
  auto bus = VirtioUserBus::Create(bus_options);
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
    std::fprintf(stderr, "vsock_probe: the %s bus is not built yet (use virtio-user:PATH)\n",
                 options->bus == ProbeBusKind::kUio ? "uio" : "vfio");
    return 2;
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
