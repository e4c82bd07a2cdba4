// File: transport_vsock/device/vm_server.cc
#include "transport_vsock/device/vm_server.h"

#include <poll.h>

#include <utility>

#include "core/base/logging.h"

namespace vrpc {
namespace vsock {

absl::StatusOr<std::unique_ptr<VmServer>> VmServer::Create(const VmSpec& spec,
                                                           io::Reactor& reactor) {
  std::unique_ptr<VmServer> server(new VmServer(spec, reactor));
  VsockDeviceOptions options;
  options.host.guest_cid = spec.guest_cid;
  options.host.uds_path = spec.uds_path;
  auto mode = ParseRingNotifyMode(spec.ring_mode);
  if (!mode.ok()) return mode.status();
  options.notify_mode = *mode;
  auto device = VsockDevice::Create(options, reactor);
  if (!device.ok()) return device.status();
  server->device_ = *std::move(device);
  server->backend_ = std::make_unique<vhost_user::Backend>(server->device_.get());
  auto listener = vhost_user::Listener::Create(spec.socket);
  if (!listener.ok()) return listener.status();
  server->listener_ = *std::move(listener);
  VmServer* self = server.get();
  auto watch = reactor.Watch(server->listener_->fd(), io::kReadable,
                             [self](uint32_t) { self->OnListenerReadable(); });
  if (!watch.ok()) return watch.status();
  server->listen_watch_ = *watch;
  return server;
}

VmServer::~VmServer() {
  if (listen_watch_ != 0) reactor_.Unwatch(listen_watch_);
  EndSession();
  backend_.reset();   // before the device it calls into
  listener_.reset();  // unlinks the vhost-user socket
  device_.reset();    // unlinks the hybrid socket
}

void VmServer::OnListenerReadable() {
  auto socket = listener_->Accept();
  if (!socket.ok()) return;  // nobody waiting after all
  if (backend_->attached() && frontend_watch_ != 0) {
    // The frontend we have may be gone with its hang-up not yet read (a VMM
    // restarting, a driver reconnecting): take that news first.
    pollfd p{backend_->socket_fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) OnFrontendReadable();
  }
  if (backend_->attached()) {
    VRPC_LOG(WARNING) << "vm " << spec_.guest_cid
                      << ": refusing a second vhost-user frontend";
    return;  // |socket| closes
  }
  const int fd = socket->get();
  if (absl::Status s = backend_->Attach(*std::move(socket)); !s.ok()) {
    VRPC_LOG(WARNING) << "vm " << spec_.guest_cid << ": " << s;
    return;
  }
  auto watch = reactor_.Watch(fd, io::kReadable, [this](uint32_t) { OnFrontendReadable(); });
  if (!watch.ok()) {
    VRPC_LOG(ERROR) << "vm " << spec_.guest_cid << ": " << watch.status();
    backend_->Disconnect();
    return;
  }
  frontend_watch_ = *watch;
  ++sessions_;
  VRPC_LOG(INFO) << "vm " << spec_.guest_cid << ": vhost-user frontend connected";
}

void VmServer::OnFrontendReadable() {
  absl::Status s = backend_->HandleReadable();
  if (s.ok()) return;
  if (absl::IsUnavailable(s)) {
    VRPC_LOG(INFO) << "vm " << spec_.guest_cid << ": frontend disconnected";
  } else {
    VRPC_LOG(WARNING) << "vm " << spec_.guest_cid << ": frontend session ended: " << s;
  }
  EndSession();
}

void VmServer::EndSession() {
  if (frontend_watch_ != 0) reactor_.Unwatch(frontend_watch_);
  frontend_watch_ = 0;
  if (backend_ != nullptr) backend_->Disconnect();  // resets the device
}

}  // namespace vsock
}  // namespace vrpc
