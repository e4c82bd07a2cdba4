// File: transport_vsock/dial/dial.cc
#include "transport_vsock/dial/dial.h"

#include <mutex>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/transport/address.h"
#include "transport_vsock/device/vm_server.h"
#include "transport_vsock/dial/owning_endpoints.h"
#include "transport_vsock/driver/uio_bus.h"
#include "transport_vsock/driver/vfio_bus.h"
#include "transport_vsock/driver/virtio_user_bus.h"
#include "transport_vsock/driver/vsock_driver.h"
#include "transport_vsock/kernel/kernel_transport.h"
#include "transport_vsock/loopback/loopback_transport.h"

namespace vrpc {
namespace dial {
namespace {

using transport::Address;

// ---- Shared transports, per (reactor, kind, path) ----

// Finds the live transport under |key| or creates one with |make|; with
// |exclusive|, an existing one is kAlreadyExists instead.
template <typename T>
struct Live {
  std::mutex mu;
  absl::flat_hash_map<std::string, std::weak_ptr<T>> by_key;
};

// One table per transport type (not per caller: Shared is instantiated for
// each |make| lambda type).
template <typename T>
Live<T>& LiveOf() {
  static auto* live = new Live<T>();
  return *live;
}

template <typename T, typename Make>
absl::StatusOr<std::shared_ptr<T>> Shared(io::Reactor& reactor, const Address& address,
                                          Make make, bool exclusive = false) {
  Live<T>& table = LiveOf<T>();
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(&reactor), "|",
                                       transport::AddressKindName(address.kind), "|",
                                       address.path);
  std::lock_guard<std::mutex> lock(table.mu);
  auto it = table.by_key.find(key);
  if (std::shared_ptr<T> found = it != table.by_key.end() ? it->second.lock() : nullptr) {
    if (exclusive) {
      return absl::AlreadyExistsError(
          absl::StrCat("this process already serves ", address.path));
    }
    return found;
  }
  absl::StatusOr<std::unique_ptr<T>> made = make();
  if (!made.ok()) return made.status();
  std::shared_ptr<T> shared(*std::move(made));
  // Entries of transports that are gone go now: the table stays as small as
  // what is alive.
  for (auto e = table.by_key.begin(); e != table.by_key.end();) {
    if (e->second.expired()) {
      table.by_key.erase(e++);
    } else {
      ++e;
    }
  }
  table.by_key[key] = shared;
  return shared;
}

absl::StatusOr<std::shared_ptr<vsock::LoopbackTransport>> LoopbackOn(io::Reactor& reactor,
                                                                     const Address& address) {
  return Shared<vsock::LoopbackTransport>(
      reactor, address, [&] { return vsock::LoopbackTransport::Create(reactor); });
}

// The bus a guest driver address names. UIO and VFIO take the function as
// it is bound: rebinding is the operator's decision (vsock_probe --bind).
absl::StatusOr<std::unique_ptr<vsock::Bus>> BusFor(const Address& address) {
  if (address.kind == Address::Kind::kUio) {
    vsock::UioBusOptions o;
    o.pci_address = address.path;
    auto bus = vsock::UioBus::Create(o);
    if (!bus.ok()) return bus.status();
    return std::unique_ptr<vsock::Bus>(*std::move(bus));
  }
  if (address.kind == Address::Kind::kVfio) {
    vsock::VfioBusOptions o;
    o.pci_address = address.path;
    auto bus = vsock::VfioBus::Create(o);
    if (!bus.ok()) return bus.status();
    return std::unique_ptr<vsock::Bus>(*std::move(bus));
  }
  vsock::VirtioUserBusOptions o;
  o.socket_path = address.path;
  auto bus = vsock::VirtioUserBus::Create(o);
  if (!bus.ok()) return bus.status();
  return std::unique_ptr<vsock::Bus>(*std::move(bus));
}

absl::StatusOr<std::shared_ptr<vsock::VsockDriver>> DriverOn(io::Reactor& reactor,
                                                             const Address& address,
                                                             const DialOptions& options) {
  return Shared<vsock::VsockDriver>(
      reactor, address, [&]() -> absl::StatusOr<std::unique_ptr<vsock::VsockDriver>> {
        absl::StatusOr<vsock::DriverNotifyMode> mode =
            vsock::ParseDriverNotifyMode(options.notify_mode);
        if (!mode.ok()) return mode.status();
        auto bus = BusFor(address);
        if (!bus.ok()) return bus.status();
        vsock::VsockDriverOptions driver_options;
        driver_options.notify_mode = *mode;
        return vsock::VsockDriver::Create(*std::move(bus), reactor, driver_options);
      });
}

absl::StatusOr<std::shared_ptr<vsock::VmServer>> DeviceOn(io::Reactor& reactor,
                                                          const Address& address,
                                                          const DialOptions& options) {
  auto server = Shared<vsock::VmServer>(reactor, address, [&] {
    vsock::VmSpec spec;
    spec.guest_cid = address.cid;
    spec.socket = address.path;
    spec.ring_mode = options.notify_mode;
    return vsock::VmServer::Create(spec, reactor);
  });
  if (server.ok() && (*server)->spec().guest_cid != address.cid) {
    return absl::InvalidArgumentError(
        absl::StrCat(transport::FormatAddress(address), ": this process already serves guest CID ",
                     (*server)->spec().guest_cid, " on that socket"));
  }
  return server;
}

}  // namespace

absl::StatusOr<std::shared_ptr<vsock::VmServer>> ServeVm(const vsock::VmSpec& spec,
                                                        io::Reactor& reactor) {
  Address address;
  address.kind = Address::Kind::kVhostUser;
  address.path = spec.socket;
  address.cid = spec.guest_cid;
  return Shared<vsock::VmServer>(
      reactor, address, [&] { return vsock::VmServer::Create(spec, reactor); },
      /*exclusive=*/true);
}

absl::StatusOr<std::unique_ptr<transport::Listener>> Listen(absl::string_view text,
                                                            io::Reactor& reactor,
                                                            const DialOptions& options) {
  absl::StatusOr<Address> address = transport::ParseAddress(text);
  if (!address.ok()) return address.status();
  switch (address->kind) {
    case Address::Kind::kLoopback: {
      auto link = LoopbackOn(reactor, *address);
      if (!link.ok()) return link.status();
      auto listener = (*link)->host().Listen(address->port);
      if (!listener.ok()) return listener.status();
      return OwningListener(*std::move(listener), *std::move(link));
    }
    case Address::Kind::kVirtioUser:
    case Address::Kind::kUio:
    case Address::Kind::kVfio: {
      auto driver = DriverOn(reactor, *address, options);
      if (!driver.ok()) return driver.status();
      if (address->cid != transport::kCidAny && address->cid != (*driver)->guest_cid()) {
        return absl::InvalidArgumentError(
            absl::StrCat(text, ": the device gave this guest CID ", (*driver)->guest_cid(),
                         "; listen on that CID or on any"));
      }
      auto listener = (*driver)->Listen(address->port);
      if (!listener.ok()) return listener.status();
      return OwningListener(*std::move(listener), *std::move(driver));
    }
    case Address::Kind::kVhostUser: {
      auto server = DeviceOn(reactor, *address, options);
      if (!server.ok()) return server.status();
      auto listener = (*server)->device().host().Listen(address->port);
      if (!listener.ok()) return listener.status();
      return OwningListener(*std::move(listener), *std::move(server));
    }
    case Address::Kind::kHvsock:
      return absl::InvalidArgumentError(absl::StrCat(
          text, ": hvsock: addresses only dial; listen with vhost-user: (the device) or "
                "vsock: inside the guest"));
    case Address::Kind::kUnix:
    case Address::Kind::kVsock:
    case Address::Kind::kVsockSeqpacket:
      return kernel::ListenKernel(*address, reactor);
  }
  return absl::InvalidArgumentError(absl::StrCat(text, ": unknown address kind"));
}

absl::StatusOr<std::unique_ptr<transport::Connector>> Dial(absl::string_view text,
                                                           io::Reactor& reactor,
                                                           const DialOptions& options) {
  absl::StatusOr<Address> address = transport::ParseAddress(text);
  if (!address.ok()) return address.status();
  switch (address->kind) {
    case Address::Kind::kLoopback: {
      auto link = LoopbackOn(reactor, *address);
      if (!link.ok()) return link.status();
      auto connector = (*link)->guest().ConnectorTo(address->port);
      return OwningConnector(std::move(connector), *std::move(link));
    }
    case Address::Kind::kVirtioUser:
    case Address::Kind::kUio:
    case Address::Kind::kVfio: {
      auto driver = DriverOn(reactor, *address, options);
      if (!driver.ok()) return driver.status();
      auto connector = (*driver)->ConnectorTo(address->cid, address->port);
      if (!connector.ok()) return connector.status();
      return OwningConnector(*std::move(connector), *std::move(driver));
    }
    case Address::Kind::kVhostUser: {
      auto server = DeviceOn(reactor, *address, options);
      if (!server.ok()) return server.status();
      auto connector = (*server)->device().host().ConnectorTo(address->port);
      return OwningConnector(std::move(connector), *std::move(server));
    }
    case Address::Kind::kUnix:
    case Address::Kind::kVsock:
    case Address::Kind::kVsockSeqpacket:
    case Address::Kind::kHvsock:
      return kernel::KernelConnector(*address, reactor);
  }
  return absl::InvalidArgumentError(absl::StrCat(text, ": unknown address kind"));
}

}  // namespace dial
}  // namespace vrpc
