// File: core/rpc/backoff.h
//
// Reconnect backoff, gRPC's connection-backoff algorithm: the first retry
// after |initial|, each next one |multiplier| times longer up to |max|, each
// randomized by +-|jitter|. Pure: the random source is a seed.
#ifndef VRPC_CORE_RPC_BACKOFF_H_
#define VRPC_CORE_RPC_BACKOFF_H_

#include <cstdint>

#include "absl/time/time.h"

namespace vrpc {
namespace rpc {

struct BackoffPolicy {
  absl::Duration initial = absl::Seconds(1);
  double multiplier = 1.6;
  double jitter = 0.2;
  absl::Duration max = absl::Seconds(120);
};

class Backoff {
 public:
  explicit Backoff(const BackoffPolicy& policy, uint64_t seed = 0x9e3779b97f4a7c15ull)
      : policy_(policy), state_(seed | 1) {}

  // The delay before the next attempt; grows with each call.
  absl::Duration Next();
  // After a success: the next delay is |initial| again.
  void Reset() { current_ = absl::ZeroDuration(); }

 private:
  double Uniform();  // [0, 1)

  const BackoffPolicy policy_;
  absl::Duration current_ = absl::ZeroDuration();  // un-jittered; 0 = not started
  uint64_t state_;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_BACKOFF_H_
