// File: tests/rpc/call_suite.h
//
// The RPC call suite, parameterised by transport: every call kind,
// metadata, status codes, deadlines, cancellation from either side, size
// limits, 1000 concurrent calls, head-of-line blocking, channel states
// (connecting to nothing, reconnect, peer close, credit blocked) and
// graceful shutdown, run unchanged over each transport the dial layer
// (transport_vsock/dial) knows. A transport joins by instantiating the
// suite with a TransportParam (see call_suite_test.cc):
//
//   INSTANTIATE_TEST_SUITE_P(Mine, CallSuite, ::testing::Values(TransportParam{...}),
//                            TransportParamName);
//
// Server and client run on two event loops unless the transport needs one
// (loopback). Transport-specific tests (zero-copy counts, resets) live
// beside each transport's own tests.
#ifndef VRPC_TESTS_RPC_CALL_SUITE_H_
#define VRPC_TESTS_RPC_CALL_SUITE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/buffer/slice.h"
#include "core/io/event_loop_thread.h"
#include "core/rpc/channel.h"
#include "core/rpc/client_call.h"
#include "core/rpc/server.h"
#include "core/rpc/service.h"
#include "tests/rpc/test_service.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace rpc_testing {

struct TransportParam {
  std::string name;  // test-name suffix: letters, digits, '_'
  // Addresses for |port|, given a private directory for socket files.
  std::function<std::string(const std::string& dir, uint32_t port)> listen_address;
  std::function<std::string(const std::string& dir, uint32_t port)> dial_address;
  // Server and client on one event loop (in-process transports).
  bool one_loop = false;
  // Dial before listening (when the client's side creates the device the
  // server's side attaches to).
  bool dial_first = false;
  // Whether a full peer window is visible as credit-blocked.
  bool credit_observable = true;
  // The client's transport sends from its own buffers
  // (Channel::write_allocator) without copying payload bytes.
  bool zero_copy_tx = false;
  // "interrupt", "poll" or "adaptive", for the userspace transports.
  std::string notify_mode = "interrupt";
  // The server runs the unary handlers that never block (Echo, Fail,
  // Probe) inline on its reactor (Service::RunInline).
  bool inline_unary = false;
};

std::string TransportParamName(const ::testing::TestParamInfo<TransportParam>& info);

class CallSuite : public ::testing::TestWithParam<TransportParam> {
 protected:
  static constexpr uint32_t kPort = 5000;

  void SetUp() override;
  void TearDown() override;

  // Starts serving |port| on the server loop.
  void ListenOn(uint32_t port);
  // A channel to |port| on the client loop.
  std::shared_ptr<rpc::Channel> MakeChannel(rpc::ChannelOptions options, uint32_t port = kPort);
  absl::Status Unary(const std::string& method, const std::string& req, std::string* resp,
                     rpc::ClientContext* ctx = nullptr);

  io::EventLoopThread& server_loop() { return *server_loop_; }
  io::EventLoopThread& client_loop() { return client_loop_ ? *client_loop_ : *server_loop_; }

  std::string dir_;
  rpc::ServerOptions server_options_;
  TestService service_;
  std::unique_ptr<io::EventLoopThread> server_loop_, client_loop_;
  std::unique_ptr<rpc::Server> server_;
  std::shared_ptr<rpc::Channel> channel_;
  std::vector<std::shared_ptr<rpc::Channel>> extra_channels_;
};

}  // namespace rpc_testing
}  // namespace vrpc

#endif  // VRPC_TESTS_RPC_CALL_SUITE_H_
