// File: host_agent/vrpcctl/command_line.h
//
// vrpcctl's command line, parsed purely:
//
//   vrpcctl [--gateway=PATH] [--json] [--timeout=SECONDS] --vm NAME COMMAND ...
//
//   exec [-i] [--] CMD [ARG...]   run CMD in the guest; -i sends our stdin
//   cp SRC DST                    copy a file; the guest's side is written
//                                 :PATH (cp ./a :/root/a, cp :/etc/hostname .)
//   info                          kernel, uptime, memory, CPUs, load
//   health                        the guest agent's grpc.health.v1 status
//   forward LOCAL:REMOTE          TCP 127.0.0.1:LOCAL here -> REMOTE in the guest
//   ls PATH, stat PATH
//
// The gateway defaults to $VRPC_GATEWAY, else /run/vrpc/gateway.sock.
#ifndef VRPC_HOST_AGENT_VRPCCTL_COMMAND_LINE_H_
#define VRPC_HOST_AGENT_VRPCCTL_COMMAND_LINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vrpc {
namespace vrpcctl {

struct CommandLine {
  std::string gateway;
  std::string vm;
  bool json = false;
  double timeout_seconds = 0;  // 0: none
  std::string command;         // exec, cp, info, health, forward, ls, stat
  // exec
  bool interactive = false;
  std::vector<std::string> argv;
  // cp: exactly one side is remote
  std::string src, dst;
  bool upload = false;  // local -> guest
  // forward
  uint32_t local_port = 0, remote_port = 0;
  // ls, stat
  std::string path;
  bool help = false;
};

// |args| without argv[0]; |env_gateway| is $VRPC_GATEWAY (or empty).
// kInvalidArgument naming the problem.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             const std::string& env_gateway);

std::string Usage();

}  // namespace vrpcctl
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_VRPCCTL_COMMAND_LINE_H_
