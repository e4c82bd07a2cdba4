// File: examples/echo/client_modes.h
//
// The echo client's call kinds, each in two APIs. Every reply is checked
// byte for byte against what was sent.
//   blocking:  the generated stub's blocking calls, from the calling thread
//   callback:  AsyncUnary and the reactors (core/rpc/reactors.h); each step
//              starts on the channel's loop from the previous one's
//              completion, so no application thread sits between messages.
//              The calling thread only waits for the end.
#ifndef VRPC_EXAMPLES_ECHO_CLIENT_MODES_H_
#define VRPC_EXAMPLES_ECHO_CLIENT_MODES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/io/reactor.h"
#include "proto/echo/echo.vrpc.pb.h"

namespace vrpc {
namespace echo_example {

struct Run {
  std::string mode;  // unary, client-stream, server-stream or bidi
  uint64_t count = 0;
  size_t size = 0;
  absl::Duration timeout;  // each call's deadline
};

// What a mode did: latencies of its round trips, and failures.
struct Result {
  std::vector<absl::Duration> latencies;
  uint64_t messages = 0;  // payloads that made the round trip, checked
  uint64_t failures = 0;
  std::string first_error;
  void Fail(const std::string& what) {
    if (failures++ == 0) first_error = what;
  }
};

// Runs run.mode through the blocking stub.
void RunBlocking(echo::Echo::Stub& stub, const Run& run, Result& r);
// Runs run.mode through the callback API on |loop|, the channel's loop.
void RunCallback(echo::Echo::Stub& stub, io::Reactor& loop, const Run& run, Result& r);

}  // namespace echo_example
}  // namespace vrpc

#endif  // VRPC_EXAMPLES_ECHO_CLIENT_MODES_H_
