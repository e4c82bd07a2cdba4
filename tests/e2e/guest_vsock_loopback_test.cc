// Runs tests/e2e/guest/vsock_selftest inside a QEMU guest: the guest kernel's
// AF_VSOCK over the vsock_loopback transport (CID 1). Proves the harness, the
// guest module set and the static payload toolchain, and is the baseline the
// kernel-transport tests (guest Linux <-> vrpc's device) build on.
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

void RunSelftest(int cpus) {
  VRPC_ASSERT_OK(CheckGuestEnvironment());
  VRPC_ASSERT_OK_AND_ASSIGN(std::string selftest, Runfile("tests/e2e/guest/vsock_selftest"));
  GuestOptions opts;
  opts.name = "vsock-loopback-smp" + std::to_string(cpus);
  opts.cpus = cpus;
  VRPC_ASSERT_OK(opts.payload.SetHostBinary(selftest, {"--bytes=1048576"}));
  VRPC_ASSERT_OK_AND_ASSIGN(GuestResult r, RunGuest(opts));
  std::cerr << "TIMING vsock_selftest (" << cpus << " vCPU): boot "
            << absl::FormatDuration(r.boot_time) << ", payload "
            << absl::FormatDuration(r.payload_time) << ", total "
            << absl::FormatDuration(r.total_time) << "\n";
  EXPECT_EQ(r.exit_code, 0) << "vsock_selftest failed in the guest:\n"
                            << r.payload_output << "\nconsole log: " << r.console_log_path;
  EXPECT_THAT(r.payload_output, HasSubstr("PASS bulk_both_ways: 1048576 bytes each way"));
  EXPECT_THAT(r.payload_output, HasSubstr("PASS connect_no_listener"));
  EXPECT_THAT(r.payload_output, HasSubstr("PASS half_close"));
  EXPECT_THAT(r.payload_output, HasSubstr("ALL 3 TESTS PASSED"));
}

TEST(GuestVsockLoopbackTest, SelftestPassesOnOneVcpu) { RunSelftest(1); }

// Two vCPUs: sender, receiver and the loopback worker really run in parallel.
TEST(GuestVsockLoopbackTest, SelftestPassesOnTwoVcpus) { RunSelftest(2); }

}  // namespace
}  // namespace e2e
}  // namespace vrpc
