// File: tests/bench/callgrind.h
//
// Instructions per call, counted by valgrind's callgrind: the subject
// binary (unary_loop) runs twice, with --count=|n1| and --count=|n2| after
// the same warm-up; (Ir(n2) - Ir(n1)) / (n2 - n1) is the figure. Both ends
// (client, server, the loopback transport, all threads) are counted.
//
// InstructionsOverDevice counts the same calls over the real transport: the
// server (vrpc_peer behind vrpc's vhost-user device) and the client
// (unary_loop --target on the virtio-user driver) each under callgrind, in
// interrupt mode (a polling loop's spins would be counted too).
#ifndef VRPC_TESTS_BENCH_CALLGRIND_H_
#define VRPC_TESTS_BENCH_CALLGRIND_H_

#include <string>

#include "absl/status/statusor.h"

namespace vrpc {
namespace bench {

// kNotFound if valgrind is not installed; kDeadlineExceeded if a run takes
// longer than |timeout_s| (it is killed); kInternal if a run fails or its
// total cannot be read.
absl::StatusOr<double> InstructionsPerCall(const std::string& subject, const std::string& tmp_dir,
                                           int warmup, int n1, int n2, int timeout_s);

struct DeviceInstructions {
  double client = 0;  // the RPC client, its vsock engine and the guest driver
  double server = 0;  // the vhost-user device, its vsock engine and the RPC server
};
// |bin_dir| holds unary_loop and vrpc_peer. Errors as above.
absl::StatusOr<DeviceInstructions> InstructionsOverDevice(const std::string& bin_dir,
                                                         const std::string& tmp_dir, int warmup,
                                                         int n1, int n2, int timeout_s);

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_CALLGRIND_H_
