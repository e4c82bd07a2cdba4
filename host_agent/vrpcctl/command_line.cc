// File: host_agent/vrpcctl/command_line.cc
#include "host_agent/vrpcctl/command_line.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vrpc {
namespace vrpcctl {
namespace {

absl::Status Bad(const std::string& why) { return absl::InvalidArgumentError(why); }

bool Port(absl::string_view text, uint32_t* port) {
  return absl::SimpleAtoi(text, port) && *port > 0 && *port < 65536;
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             const std::string& env_gateway) {
  CommandLine c;
  c.gateway = env_gateway.empty() ? "/run/vrpc/gateway.sock" : env_gateway;
  size_t i = 0;
  // Global flags, up to the command.
  for (; i < args.size() && absl::StartsWith(args[i], "-"); ++i) {
    std::string flag = args[i];
    std::string value;
    const size_t eq = flag.find('=');
    const bool has_value = eq != std::string::npos;
    if (has_value) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    auto take = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) return Bad(absl::StrCat(flag, " needs a value"));
      return args[++i];
    };
    if (flag == "-h" || flag == "--help") {
      c.help = true;
      return c;
    } else if (flag == "--json") {
      c.json = true;
    } else if (flag == "--vm" || flag == "--gateway" || flag == "--timeout") {
      absl::StatusOr<std::string> v = take();
      if (!v.ok()) return v.status();
      if (flag == "--vm") c.vm = *v;
      if (flag == "--gateway") c.gateway = *v;
      if (flag == "--timeout" && (!absl::SimpleAtod(*v, &c.timeout_seconds) ||
                                  c.timeout_seconds <= 0)) {
        return Bad("--timeout takes a positive number of seconds");
      }
    } else {
      return Bad(absl::StrCat("unknown flag ", flag));
    }
  }
  if (i >= args.size()) return Bad("no command (exec, cp, info, health, forward, ls, stat)");
  if (c.vm.empty()) return Bad("--vm NAME is required");
  c.command = args[i++];
  std::vector<std::string> rest(args.begin() + i, args.end());
  if (c.command == "exec") {
    size_t j = 0;
    for (; j < rest.size(); ++j) {
      if (rest[j] == "-i") {
        c.interactive = true;
      } else if (rest[j] == "--") {
        ++j;
        break;
      } else {
        break;
      }
    }
    c.argv.assign(rest.begin() + j, rest.end());
    if (c.argv.empty()) return Bad("exec needs a command: vrpcctl --vm NAME exec -- CMD...");
  } else if (c.command == "cp") {
    if (rest.size() != 2) return Bad("cp takes SRC DST (the guest's side as :PATH)");
    const bool src_remote = absl::StartsWith(rest[0], ":");
    const bool dst_remote = absl::StartsWith(rest[1], ":");
    if (src_remote == dst_remote) return Bad("cp: exactly one of SRC and DST is :PATH (the guest's)");
    c.upload = dst_remote;
    c.src = src_remote ? rest[0].substr(1) : rest[0];
    c.dst = dst_remote ? rest[1].substr(1) : rest[1];
    const std::string& remote = c.upload ? c.dst : c.src;
    if (!absl::StartsWith(remote, "/")) return Bad("cp: the guest's path must be absolute");
  } else if (c.command == "info" || c.command == "health") {
    if (!rest.empty()) return Bad(absl::StrCat(c.command, " takes no arguments"));
  } else if (c.command == "forward") {
    std::vector<std::string> ports = absl::StrSplit(rest.empty() ? "" : rest[0], ':');
    if (rest.size() != 1 || ports.size() != 2 || !Port(ports[0], &c.local_port) ||
        !Port(ports[1], &c.remote_port)) {
      return Bad("forward takes LOCAL_PORT:REMOTE_PORT");
    }
  } else if (c.command == "ls" || c.command == "stat") {
    if (rest.size() != 1 || !absl::StartsWith(rest[0], "/")) {
      return Bad(absl::StrCat(c.command, " takes one absolute path"));
    }
    c.path = rest[0];
  } else {
    return Bad(absl::StrCat("unknown command \"", c.command, "\""));
  }
  return c;
}

std::string Usage() {
  return "usage: vrpcctl [--gateway=PATH] [--json] [--timeout=SECONDS] --vm NAME COMMAND\n"
         "\n"
         "  exec [-i] [--] CMD [ARG...]  run CMD in the guest (-i: send stdin); exits with\n"
         "                               its status\n"
         "  cp SRC DST                   copy a file; the guest's side is :PATH\n"
         "  info                         kernel, uptime, memory, CPUs, load\n"
         "  health                       the guest agent's health status\n"
         "  forward LOCAL:REMOTE         forward 127.0.0.1:LOCAL to the guest's port REMOTE\n"
         "  ls PATH | stat PATH          list a directory, describe a file\n"
         "\n"
         "Talks to the host agent's gRPC gateway (--gateway, $VRPC_GATEWAY, or\n"
         "/run/vrpc/gateway.sock); --vm names the guest as the host agent knows it.\n"
         "--json prints one JSON object instead of text.\n";
}

}  // namespace vrpcctl
}  // namespace vrpc
