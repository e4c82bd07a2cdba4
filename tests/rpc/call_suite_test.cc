// File: tests/rpc/call_suite_test.cc
//
// The call suite (call_suite.h) over every transport the dial layer knows:
//   Loopback            two protocol engines in process, one event loop
//   VirtioUser          client: the userspace guest driver (virtio-user:);
//                       server: vrpc's device (vhost-user:), over a real
//                       vhost-user socket, memfd memory and eventfds
//   VirtioUserReverse   the same pair, the guest serving and the host dialing
//   VirtioUserPoll      VirtioUser with both sides busy-polling their rings
//   Unix                kernel AF_UNIX sockets (transport_vsock/kernel)
//   *Inline             the server runs its non-blocking unary handlers on
//                       its reactor (Service::RunInline)
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/rpc/call_suite.h"

namespace vrpc {
namespace rpc_testing {
namespace {

std::string LoopbackAddress(const std::string&, uint32_t port) {
  return absl::StrCat("loopback:", port);
}
std::string DeviceAddress(const std::string& dir, uint32_t port) {
  return absl::StrCat("vhost-user:", dir, "/vm.vsock:3:", port);
}
std::string GuestToHost(const std::string& dir, uint32_t port) {
  return absl::StrCat("virtio-user:", dir, "/vm.vsock:2:", port);
}
std::string GuestListen(const std::string& dir, uint32_t port) {
  return absl::StrCat("virtio-user:", dir, "/vm.vsock:any:", port);
}

TransportParam Loopback() {
  TransportParam p;
  p.name = "Loopback";
  p.listen_address = LoopbackAddress;
  p.dial_address = LoopbackAddress;
  p.one_loop = true;
  return p;
}

TransportParam VirtioUser(const std::string& notify_mode) {
  TransportParam p;
  p.name = notify_mode == "interrupt" ? "VirtioUser" : "VirtioUserPoll";
  p.listen_address = DeviceAddress;
  p.dial_address = GuestToHost;
  p.notify_mode = notify_mode;
  p.zero_copy_tx = true;  // the guest driver's tx pool
  return p;
}

TransportParam VirtioUserReverse() {
  TransportParam p;
  p.name = "VirtioUserReverse";
  p.listen_address = GuestListen;
  p.dial_address = DeviceAddress;
  p.dial_first = true;  // the device must exist before the driver attaches
  return p;
}

TransportParam Unix() {
  TransportParam p;
  p.name = "Unix";
  p.listen_address = [](const std::string& dir, uint32_t port) {
    return absl::StrCat("unix:", dir, "/rpc.sock", port);
  };
  p.dial_address = p.listen_address;
  // A kernel socket shows a full send queue (EAGAIN), not the peer's window:
  // whether 3 MiB ever fills it depends on the reader's pace.
  p.credit_observable = false;
  return p;
}

TransportParam Inline(TransportParam p) {
  p.name += "Inline";
  p.inline_unary = true;
  return p;
}

INSTANTIATE_TEST_SUITE_P(Transports, CallSuite,
                         ::testing::Values(Loopback(), VirtioUser("interrupt"),
                                           VirtioUserReverse(), VirtioUser("poll"), Unix(),
                                           Inline(Loopback()), Inline(VirtioUser("poll"))),
                         TransportParamName);

}  // namespace
}  // namespace rpc_testing
}  // namespace vrpc
