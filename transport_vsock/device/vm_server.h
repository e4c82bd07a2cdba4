// File: transport_vsock/device/vm_server.h
//
// VmServer: serves one VM's vhost-user vsock device on a reactor. It listens
// on the VM's vhost-user socket, runs one frontend (QEMU) session at a time
// through vhost_user::Backend into a VsockDevice, and after the frontend
// disconnects (VM powered off or restarted) resets every connection and
// waits for the next one. A second frontend arriving while one is attached
// is refused (its socket closed).
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_VM_SERVER_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_VM_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/io/reactor.h"
#include "transport_vsock/device/vsock_device.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/listener.h"

namespace vrpc {
namespace vsock {

// One VM's device, as the host agent's command line names it.
struct VmSpec {
  uint64_t guest_cid = 0;
  std::string socket;    // vhost-user socket the VMM (QEMU) connects to
  std::string uds_path;  // hybrid vsock socket for host applications (empty: none)
  // How the device watches the rings: "interrupt" (kicks), "poll" (busy
  // polling, one core per agent thread), "adaptive" (poll under load).
  std::string ring_mode = "interrupt";
};

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
  VsockDevice& device() { return *device_; }
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
  std::unique_ptr<VsockDevice> device_;
  std::unique_ptr<vhost_user::Backend> backend_;
  std::unique_ptr<vhost_user::Listener> listener_;
  io::WatchId listen_watch_ = 0;
  io::WatchId frontend_watch_ = 0;
  int sessions_ = 0;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_VM_SERVER_H_
