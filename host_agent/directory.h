// File: host_agent/directory.h
//
// Directory: the guest agents a host agent can reach, by VM name, each at an
// address of docs/addresses.md ("vhost-user:/run/vm1.vsock:3:1024" for a VM
// whose device this host agent serves, "hvsock:/run/fc1.sock:1024" for a
// Firecracker or cloud-hypervisor VM, "unix:..." for tests). One vrpc
// Channel per guest, created on first use on the host agent's reactor and
// kept (it reconnects by itself).
//
// Threading: Add before use; Channel from any thread but the reactor's
// (it waits for the reactor); Shutdown from outside the reactor, while it
// still runs.
#ifndef VRPC_HOST_AGENT_DIRECTORY_H_
#define VRPC_HOST_AGENT_DIRECTORY_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/reactor.h"
#include "core/rpc/channel.h"

namespace vrpc {
namespace host_agent {

// The guest agent's vsock port, by default.
inline constexpr uint32_t kDefaultAgentPort = 1024;

class Directory {
 public:
  explicit Directory(io::Reactor& reactor) : reactor_(reactor) {}
  ~Directory();  // Shutdown()

  // kInvalidArgument for a bad name (letters, digits, '-', '_', '.') or
  // address; kAlreadyExists for a name given twice.
  absl::Status Add(const std::string& name, const std::string& address);

  // The channel to |name|'s agent. kNotFound names the known guests.
  absl::StatusOr<std::shared_ptr<rpc::Channel>> Channel(const std::string& name);

  std::vector<std::string> names() const;
  // The address |name| was added with, or "".
  std::string address(const std::string& name) const;

  // Shuts every channel down; Channel() fails afterwards.
  void Shutdown();

 private:
  io::Reactor& reactor_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, std::shared_ptr<rpc::Channel>> channels_;
  bool shut_down_ = false;
};

}  // namespace host_agent
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_DIRECTORY_H_
