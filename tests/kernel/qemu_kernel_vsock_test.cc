// Boots a QEMU (TCG) guest that runs tests/kernel/guest/kernel_vsock_guest:
// the kernel socket transport over the guest kernel's AF_VSOCK (the
// vsock_loopback transport, CID 1). The cases, ported from Linux
// tools/testing/vsock/vsock_test.c plus vrpc's own, are listed at the top of
// kernel_vsock_guest.cc: SOCK_STREAM (vsock:) and SOCK_SEQPACKET
// (vsock-seqpacket:). AF_VSOCK never runs on the host itself.
#include <iostream>
#include <string>

#include "absl/time/time.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/qemu_guest.h"

namespace vrpc {
namespace e2e {
namespace {

using ::testing::HasSubstr;

TEST(QemuKernelVsockTest, TransportPassesTheStreamCasesOverVsockLoopback) {
  VRPC_ASSERT_OK(CheckGuestEnvironment());
  VRPC_ASSERT_OK_AND_ASSIGN(std::string guest, Runfile("tests/kernel/kernel_vsock_guest"));
  GuestOptions opts;
  opts.name = "kernel-vsock";
  opts.cpus = 2;
  VRPC_ASSERT_OK(opts.payload.SetHostBinary(guest));
  VRPC_ASSERT_OK_AND_ASSIGN(GuestResult r, RunGuest(opts));
  std::cerr << "TIMING kernel_vsock_guest: boot " << absl::FormatDuration(r.boot_time)
            << ", payload " << absl::FormatDuration(r.payload_time) << "\n";
  EXPECT_EQ(r.exit_code, 0) << r.payload_output << "\nconsole log: " << r.console_log_path;
  for (const char* name : {"connection_reset", "bind_only", "client_close", "server_close",
                           "multiconn", "shut_wr", "bulk", "credit", "seq_connection_reset",
                           "seq_client_close", "seq_shut_wr", "seq_bulk", "seq_msg_bounds",
                           "seq_msg_trunc", "seq_bigmsg"}) {
    EXPECT_THAT(r.payload_output, HasSubstr(std::string("PASS ") + name + "\n"));
  }
  EXPECT_THAT(r.payload_output, HasSubstr("ALL 15 PASSED"));
}

}  // namespace
}  // namespace e2e
}  // namespace vrpc
