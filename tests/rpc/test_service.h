// File: tests/rpc/test_service.h
//
// The raw-bytes service the RPC tests call, over any transport.
#ifndef VRPC_TESTS_RPC_TEST_SERVICE_H_
#define VRPC_TESTS_RPC_TEST_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/buffer/slice.h"
#include "core/rpc/service.h"

namespace vrpc {
namespace rpc_testing {

// Raw-bytes test service: Echo (metadata reflected), Fail, Count (server
// stream), Abort (one message, then CANCELLED), Sum (client stream), Bidi,
// Probe, Hang (never reads; waits to be cancelled). Served by reactors on
// the server's loop (Service::ServeOnReactor): SumOnLoop, BidiOnLoop (the
// replies queue while the client's window is closed) and HangOnLoop (never
// finishes; counts its cancellation).
class TestService : public rpc::GenericService {
 public:
  TestService();
  std::atomic<const uint8_t*> probe_first_byte{nullptr};
  std::atomic<size_t> probe_size{0};
  std::atomic<int> hang_started{0};
  std::atomic<int> hang_cancelled{0};
  // Reactors made and destroyed, and HangOnLoop's OnCancel calls.
  std::atomic<int> reactors_made{0};
  std::atomic<int> reactors_destroyed{0};
  std::atomic<int> reactor_cancels{0};
};

SliceChain Bytes(const std::string& s);

}  // namespace rpc_testing
}  // namespace vrpc

#endif  // VRPC_TESTS_RPC_TEST_SERVICE_H_
