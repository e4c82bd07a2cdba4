// File: host_agent/vm_server.h
//
// VmServer: serves one VM's vhost-user vsock device on a reactor. It listens
// on the VM's vhost-user socket, runs one frontend (QEMU) session at a time
// through vhost_user::Backend into a VsockDevice, and after the frontend
// disconnects (VM powered off or restarted) resets every connection and
// waits for the next one. A second frontend arriving while one is attached
// is refused (its socket closed).
#ifndef VRPC_HOST_AGENT_VM_SERVER_H_
#define VRPC_HOST_AGENT_VM_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/io/reactor.h"
#include "host_agent/options.h"
#include "transport_vsock/device/vsock_device.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/listener.h"

namespace vrpc {
namespace host_agent {

class VmServer {
 public:
  // Creates the device and its sockets (vhost-user and hybrid). Does not take
  // ownership of |reactor|, which must outlive the server. Errors from the
  // socket setup (e.g. kAlreadyExists when another process serves the path).
  static absl::StatusOr<std::unique_ptr<VmServer>> Create(const VmSpec& spec,
                                                          io::Reactor& reactor);
  // Ends the session and removes both sockets.
  ~VmServer();
  VmServer(const VmServer&) = delete;
  VmServer& operator=(const VmServer&) = delete;

  const VmSpec& spec() const { return spec_; }
  vsock::VsockDevice& device() { return *device_; }
  bool frontend_attached() const { return backend_->attached(); }
  // Frontend sessions accepted so far.
  int sessions() const { return sessions_; }

 private:
  VmServer(const VmSpec& spec, io::Reactor& reactor) : spec_(spec), reactor_(reactor) {}
  void OnListenerReadable();
  void OnFrontendReadable();
  void EndSession();

  const VmSpec spec_;
  io::Reactor& reactor_;
  std::unique_ptr<vsock::VsockDevice> device_;
  std::unique_ptr<vhost_user::Backend> backend_;
  std::unique_ptr<vhost_user::Listener> listener_;
  io::WatchId listen_watch_ = 0;
  io::WatchId frontend_watch_ = 0;
  int sessions_ = 0;
};

}  // namespace host_agent
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_VM_SERVER_H_
