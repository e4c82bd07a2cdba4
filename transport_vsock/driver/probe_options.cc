#include "transport_vsock/driver/probe_options.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vrpc {
namespace vsock {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

template <typename T>
absl::Status ParseNumber(absl::string_view name, absl::string_view text, T min, T max, T* out) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < static_cast<uint64_t>(min) ||
      v > static_cast<uint64_t>(max)) {
    return Bad(absl::StrCat(name, " \"", text, "\": want a number in [", min, ", ", max, "]"));
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status ParseBus(absl::string_view spec, ProbeOptions& o) {
  struct Kind {
    const char* prefix;
    ProbeBusKind kind;
  };
  for (const Kind& k : {Kind{"virtio-user:", ProbeBusKind::kVirtioUser},
                        Kind{"uio:", ProbeBusKind::kUio}, Kind{"vfio:", ProbeBusKind::kVfio}}) {
    if (absl::ConsumePrefix(&spec, k.prefix)) {
      if (spec.empty()) return Bad(absl::StrCat("--bus=", k.prefix, " needs an address"));
      o.bus = k.kind;
      o.bus_address = std::string(spec);
      return absl::OkStatus();
    }
  }
  return Bad(absl::StrCat("--bus \"", spec,
                          "\": want virtio-user:PATH, uio:PCI_ADDRESS or vfio:PCI_ADDRESS"));
}

absl::Status ParseFlag(absl::string_view flag, ProbeOptions& o, bool* bus_seen) {
  absl::string_view value;
  const size_t eq = flag.find('=');
  if (eq != absl::string_view::npos) {
    value = flag.substr(eq + 1);
    flag = flag.substr(0, eq);
  }
  if (flag == "--help" || flag == "-h") {
    o.help = true;
    return absl::OkStatus();
  }
  if (flag == "--bind" && eq == absl::string_view::npos) {
    o.bind = true;
    return absl::OkStatus();
  }
  if (eq == absl::string_view::npos) return Bad(absl::StrCat(flag, " needs =VALUE"));
  if (flag == "--bus") {
    *bus_seen = true;
    return ParseBus(value, o);
  }
  if (flag == "--mode") {
    absl::StatusOr<DriverNotifyMode> mode = ParseDriverNotifyMode(value);
    if (!mode.ok()) return mode.status();
    o.mode = *mode;
    return absl::OkStatus();
  }
  if (flag == "--rx-buffer-size") {
    return ParseNumber<uint32_t>("--rx-buffer-size", value, 1, 64 * 1024, &o.rx_buffer_size);
  }
  if (flag == "--queue-size") {
    return ParseNumber<uint32_t>("--queue-size", value, 4, 1024, &o.queue_size);
  }
  if (flag == "--timeout") {
    uint32_t seconds = 0;
    absl::Status s = ParseNumber<uint32_t>("--timeout", value, 1, 86400, &seconds);
    o.timeout = absl::Seconds(seconds);
    return s;
  }
  return Bad(absl::StrCat("unknown flag ", flag));
}

}  // namespace

absl::StatusOr<ProbeOptions> ParseProbeOptions(const std::vector<std::string>& args) {
  ProbeOptions o;
  bool bus_seen = false;
  std::vector<std::string> positional;
  for (const std::string& arg : args) {
    if (absl::StartsWith(arg, "-")) {
      if (absl::Status s = ParseFlag(arg, o, &bus_seen); !s.ok()) return s;
    } else {
      positional.push_back(arg);
    }
  }
  if (o.help) return o;
  if (!bus_seen) return Bad("--bus is required");
  if (positional.empty()) return Bad("want a command: connect or serve");
  if (positional[0] == "connect") {
    if (positional.size() != 4) return Bad("usage: connect CID PORT BYTES");
    o.command = ProbeCommand::kConnect;
    absl::Status s = ParseNumber<uint64_t>("CID", positional[1], 0, 0xffffffffu, &o.cid);
    if (s.ok()) s = ParseNumber<uint32_t>("PORT", positional[2], 0, 0xfffffffeu, &o.port);
    if (s.ok()) s = ParseNumber<uint64_t>("BYTES", positional[3], 1, uint64_t{1} << 40, &o.bytes);
    if (!s.ok()) return s;
    return o;
  }
  if (positional[0] == "serve") {
    if (positional.size() != 3) return Bad("usage: serve PORT COUNT");
    o.command = ProbeCommand::kServe;
    absl::Status s = ParseNumber<uint32_t>("PORT", positional[1], 0, 0xfffffffeu, &o.port);
    if (s.ok()) s = ParseNumber<uint64_t>("COUNT", positional[2], 1, 1000000, &o.count);
    if (!s.ok()) return s;
    return o;
  }
  return Bad(absl::StrCat("unknown command \"", positional[0], "\": want connect or serve"));
}

std::string ProbeUsage() {
  return "usage: vsock_probe --bus=BUS [flags] connect CID PORT BYTES\n"
         "       vsock_probe --bus=BUS [flags] serve PORT COUNT\n"
         "\n"
         "connect: sends BYTES of a pattern to CID:PORT, expects them echoed back,\n"
         "         verifies them and prints the throughput.\n"
         "serve:   echoes COUNT connections to PORT, then exits.\n"
         "Exit status 0 only on verified success; 1 on failure; 2 on bad usage\n"
         "(including a uio:/vfio: address that names no usable virtio-vsock function).\n"
         "\n"
         "flags:\n"
         "  --bus=virtio-user:PATH   the vhost-user socket of a vsock backend\n"
         "  --bus=uio:DDDD:BB:DD.F   a virtio-vsock PCI function through uio_pci_generic\n"
         "                           (root, hugepages, no IOMMU; --queue-size=128 for QEMU)\n"
         "  --bus=vfio:DDDD:BB:DD.F  a virtio-vsock PCI function through vfio-pci (IOMMU)\n"
         "  --bind                   uio:/vfio: rebind the function to uio_pci_generic /\n"
         "                           vfio-pci (without it, it must be bound already)\n"
         "  --mode=interrupt|poll|adaptive   notification mode (interrupt)\n"
         "  --rx-buffer-size=N       payload bytes per rx buffer (65536)\n"
         "  --queue-size=N           rx/tx ring size, a power of two (256)\n"
         "  --timeout=SECONDS        give up after this long (60)\n";
}

}  // namespace vsock
}  // namespace vrpc
