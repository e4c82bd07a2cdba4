// File: core/transport/address.h
//
// The address syntax every vrpc program and tool shares: one string names a
// transport and an endpoint on it, for listening or dialing.
//
//   unix:PATH                          AF_UNIX stream socket
//   vsock:CID:PORT                     kernel AF_VSOCK; CID may be a number or
//                                      any | hypervisor | local | host
//   vsock-seqpacket:CID:PORT           kernel AF_VSOCK SOCK_SEQPACKET (still a
//                                      byte stream to the RPC layer); CIDs
//                                      as for vsock:
//   hvsock:UDS_PATH:PORT               hybrid vsock: the Unix socket a VMM
//                                      (Firecracker, cloud-hypervisor, the
//                                      vrpc host agent) exposes, plus the
//                                      guest port ("CONNECT PORT\n")
//   virtio-user:SOCK_PATH:CID:PORT     vrpc's userspace guest driver, attached
//                                      to a vhost-user socket with no VM. Dial:
//                                      the peer's CID (2, the host); listen:
//                                      our own CID (or any)
//   vhost-user:SOCK_PATH:GUEST_CID:PORT
//                                      vrpc's host device serving the guest
//                                      GUEST_CID on SOCK_PATH. Listen: host
//                                      port PORT; dial: guest port PORT
//   uio:PCI_ADDR:CID:PORT              vrpc's userspace guest driver on a
//   vfio:PCI_ADDR:CID:PORT             virtio-vsock PCI function inside a VM,
//                                      through UIO or VFIO (PCI_ADDR as in
//                                      /sys/bus/pci/devices, DDDD:BB:DD.F);
//                                      CIDs as for virtio-user
//   loopback:PORT                      in-process loopback (tests, examples)
//
// Paths are taken greedily: the numeric fields are parsed from the right, so
// a path may itself contain ':'. Parsing is pure; nothing is opened here.
#ifndef VRPC_CORE_TRANSPORT_ADDRESS_H_
#define VRPC_CORE_TRANSPORT_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace transport {

// Well-known CIDs (linux/vm_sockets.h).
inline constexpr uint64_t kCidAny = 0xFFFFFFFFu;
inline constexpr uint64_t kCidHypervisor = 0;
inline constexpr uint64_t kCidLocal = 1;
inline constexpr uint64_t kCidHost = 2;

struct Address {
  enum class Kind {
    kUnix,
    kVsock,
    kHvsock,
    kVirtioUser,
    kVhostUser,
    kLoopback,
    kUio,
    kVfio,
    kVsockSeqpacket,
  };

  Kind kind = Kind::kLoopback;
  std::string path;   // unix, hvsock, virtio-user, vhost-user; uio/vfio: PCI address
  uint64_t cid = 0;   // vsock, vsock-seqpacket, virtio-user, vhost-user, uio, vfio
  uint32_t port = 0;  // all but unix

  bool operator==(const Address& o) const {
    return kind == o.kind && path == o.path && cid == o.cid && port == o.port;
  }
};

// The scheme name of |kind| ("unix", "vsock", "vsock-seqpacket", ...).
const char* AddressKindName(Address::Kind kind);

// Parses |text|. kInvalidArgument names what is wrong: unknown scheme,
// missing or empty field, number out of range (CIDs are 32-bit, ports are
// 32-bit), a Unix path longer than sockaddr_un allows.
absl::StatusOr<Address> ParseAddress(absl::string_view text);

// The canonical text of |address|; ParseAddress(FormatAddress(a)) == a.
// Well-known CIDs print as numbers.
std::string FormatAddress(const Address& address);

}  // namespace transport
}  // namespace vrpc

#endif  // VRPC_CORE_TRANSPORT_ADDRESS_H_
