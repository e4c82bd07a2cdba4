// File: guest_agent/policy.h
//
// Policy: what the guest agent lets the host do, default-deny, in the spirit
// of qemu-guest-agent's allow/deny lists. A policy file has one directive
// per line ('#' starts a comment):
//
//   allow METHOD           a method of vrpc.agent.Agent by short name
//                          (Exec, PutFile, GetFile, Stat, List, SystemInfo,
//                          Shutdown, Forward) or "*" for all of them
//   allow-cid CID          a vsock peer CID allowed to connect (repeatable;
//                          default: 2, the host)
//   allow-unix             also serve peers on Unix sockets (tests, hybrid
//                          setups where the socket's permissions guard it)
//   limit NAME VALUE       max_message_bytes, max_file_bytes,
//                          max_concurrent_calls, max_exec_processes,
//                          max_list_entries
//
// Without a file: SystemInfo, Stat, List and GetFile are allowed; Exec,
// PutFile, Shutdown and Forward are not. grpc.health.v1.Health is always
// allowed. Parsing is pure and strict: an unknown directive, method or
// limit is an error naming the line.
#ifndef VRPC_GUEST_AGENT_POLICY_H_
#define VRPC_GUEST_AGENT_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace guest_agent {

struct Limits {
  size_t max_message_bytes = 4 << 20;
  uint64_t max_file_bytes = uint64_t{1} << 30;
  uint32_t max_concurrent_calls = 64;
  uint32_t max_exec_processes = 16;
  uint32_t max_list_entries = 10000;
};

class Policy {
 public:
  // The built-in default (see above).
  Policy();

  static absl::StatusOr<Policy> Parse(absl::string_view text);
  static absl::StatusOr<Policy> Load(const std::string& path);

  // OK, or PERMISSION_DENIED naming the method, for a full method name
  // ("/vrpc.agent.Agent/Exec").
  absl::Status Authorize(const std::string& method) const;
  // OK, or PERMISSION_DENIED, for a peer address in the project's syntax
  // ("vsock:2:1035", "unix:...").
  absl::Status AcceptPeer(const std::string& peer) const;

  const Limits& limits() const { return limits_; }
  bool allows(const std::string& short_name) const { return allowed_.count(short_name) > 0; }

 private:
  std::set<std::string> allowed_;  // short names
  std::set<uint64_t> cids_;
  bool allow_unix_ = false;
  Limits limits_;
};

}  // namespace guest_agent
}  // namespace vrpc

#endif  // VRPC_GUEST_AGENT_POLICY_H_
