#include "host_agent/options.h"

#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace host_agent {
namespace {

absl::StatusOr<uint64_t> ParseCid(absl::string_view text) {
  uint64_t cid = 0;
  if (!absl::SimpleAtoi(text, &cid) || !vsock::IsValidGuestCid(cid)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guest-cid \"", text, "\" must be a guest CID in [3, 4294967294]"));
  }
  return cid;
}

// "guest-cid=3,socket=/a,uds-path=/b[,name=vm1]"
absl::StatusOr<VmSpec> ParseVm(absl::string_view spec, std::string* name) {
  VmSpec vm;
  bool cid = false;
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first == "guest-cid" || kv.first == "guest_cid") {
      auto parsed = ParseCid(kv.second);
      if (!parsed.ok()) return parsed.status();
      vm.guest_cid = *parsed;
      cid = true;
    } else if (kv.first == "socket") {
      vm.socket = std::string(kv.second);
    } else if (kv.first == "uds-path" || kv.first == "uds_path") {
      vm.uds_path = std::string(kv.second);
    } else if (kv.first == "name") {
      *name = std::string(kv.second);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--vm: unknown key \"", kv.first, "\""));
    }
  }
  if (!cid || vm.socket.empty() || vm.uds_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--vm \"", spec, "\" needs guest-cid, socket and uds-path"));
  }
  return vm;
}

// sockaddr_un holds 107 path bytes; forwarded guest connections use
// "<uds-path>_<port>", up to 11 bytes more.
constexpr size_t kMaxUnixPath = 107;
constexpr size_t kMaxPortSuffix = 11;

absl::Status CheckPaths(const VmSpec& vm) {
  if (vm.socket.size() > kMaxUnixPath) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", vm.socket, " is over ",
                                                   kMaxUnixPath, " bytes"));
  }
  if (vm.uds_path.size() + kMaxPortSuffix > kMaxUnixPath) {
    return absl::InvalidArgumentError(
        absl::StrCat("uds-path ", vm.uds_path, " is over ", kMaxUnixPath - kMaxPortSuffix,
                     " bytes (\"<uds-path>_<port>\" must fit a Unix socket address)"));
  }
  return absl::OkStatus();
}

absl::Status CheckDistinct(const std::vector<VmSpec>& vms) {
  std::set<uint64_t> cids;
  std::set<std::string> paths;
  for (const VmSpec& vm : vms) {
    if (!cids.insert(vm.guest_cid).second) {
      return absl::InvalidArgumentError(absl::StrCat("guest-cid ", vm.guest_cid, " given twice"));
    }
    for (const std::string& p : {vm.socket, vm.uds_path}) {
      if (!paths.insert(p).second) {
        return absl::InvalidArgumentError(absl::StrCat("path ", p, " given twice"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args) {
  Options options;
  VmSpec single;
  std::string single_name;
  bool any_single = false;
  std::string ring_mode = "interrupt";
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      continue;
    }
    std::string name(arg);
    std::string value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (absl::StartsWith(arg, "--") && i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag ", arg, " needs a value"));
    }
    if (name == "--vm") {
      std::string vm_name;
      auto vm = ParseVm(value, &vm_name);
      if (!vm.ok()) return vm.status();
      if (!vm_name.empty()) options.vm_names[vm->guest_cid] = vm_name;
      options.vms.push_back(*std::move(vm));
    } else if (name == "--name") {
      single_name = value;
    } else if (name == "--guest") {
      const size_t eq2 = value.find('=');
      if (eq2 == std::string::npos || eq2 == 0 || eq2 + 1 == value.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--guest ", value, ": want NAME=ADDRESS"));
      }
      options.guests.emplace_back(value.substr(0, eq2), value.substr(eq2 + 1));
    } else if (name == "--agent-port" || name == "--agent_port") {
      if (!absl::SimpleAtoi(value, &options.agent_port) || options.agent_port == 0) {
        return absl::InvalidArgumentError(absl::StrCat("--agent-port ", value, ": want a port"));
      }
    } else if (name == "--gateway") {
      if (value.empty() || value.size() > kMaxUnixPath) {
        return absl::InvalidArgumentError("--gateway takes a Unix socket path");
      }
      options.gateway = value;
    } else if (name == "--guest-cid" || name == "--guest_cid") {
      auto cid = ParseCid(value);
      if (!cid.ok()) return cid.status();
      single.guest_cid = *cid;
      any_single = true;
    } else if (name == "--ring-mode" || name == "--ring_mode") {
      if (value != "interrupt" && value != "poll" && value != "adaptive") {
        return absl::InvalidArgumentError(
            absl::StrCat("--ring-mode ", value, ": want interrupt, poll or adaptive"));
      }
      ring_mode = value;
    } else if (name == "--socket") {
      single.socket = value;
      any_single = true;
    } else if (name == "--uds-path" || name == "--uds_path") {
      single.uds_path = value;
      any_single = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name));
    }
  }
  if (options.help) return options;
  if (any_single) {
    if (!options.vms.empty()) {
      return absl::InvalidArgumentError("use either --vm or --guest-cid/--socket/--uds-path");
    }
    if (single.guest_cid == 0 || single.socket.empty() || single.uds_path.empty()) {
      return absl::InvalidArgumentError("--guest-cid, --socket and --uds-path go together");
    }
    if (!single_name.empty()) options.vm_names[single.guest_cid] = single_name;
    options.vms.push_back(single);
  }
  if (options.vms.empty() && options.guests.empty()) {
    return absl::InvalidArgumentError("no VM given (see --help)");
  }
  for (const VmSpec& vm : options.vms) {
    if (options.vm_names.count(vm.guest_cid) == 0) {
      options.vm_names[vm.guest_cid] = absl::StrCat("vm", vm.guest_cid);
    }
  }
  for (VmSpec& vm : options.vms) vm.ring_mode = ring_mode;
  for (const VmSpec& vm : options.vms) {
    if (absl::Status s = CheckPaths(vm); !s.ok()) return s;
  }
  if (absl::Status s = CheckDistinct(options.vms); !s.ok()) return s;
  return options;
}

std::string Usage() {
  return "usage: host_agent --guest-cid N --socket PATH --uds-path PATH [--name NAME] [flags]\n"
         "       host_agent --vm guest-cid=N,socket=PATH,uds-path=PATH[,name=NAME] [--vm ...] "
         "[flags]\n"
         "flags: [--ring-mode M] [--gateway PATH] [--guest NAME=ADDRESS ...] [--agent-port P]\n"
         "\n"
         "--ring-mode interrupt|poll|adaptive: wait for guest kicks (default), busy-poll\n"
         "the rings, or poll while busy and fall back to kicks when idle.\n"
         "\n"
         "Serves a vhost-user vsock device per VM on --socket (attach QEMU with\n"
         "-device vhost-user-vsock-pci). Host programs reach guest port P by\n"
         "connecting to --uds-path and writing \"CONNECT P\\n\"; guest connections to\n"
         "host port P are forwarded to the Unix socket <uds-path>_P.\n"
         "\n"
         "--gateway PATH serves a gRPC gateway on that Unix socket: any vrpc.agent.Agent\n"
         "call with metadata \"vrpc-vm: NAME\" goes to that VM's guest agent (vsock port\n"
         "--agent-port, default 1024). VMs are named vm<CID> unless named; --guest adds\n"
         "guest agents of VMs served elsewhere, e.g. --guest fc1=hvsock:/run/fc1.sock:1024.\n";
}

}  // namespace host_agent
}  // namespace vrpc
