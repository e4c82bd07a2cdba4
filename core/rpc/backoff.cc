#include "core/rpc/backoff.h"

#include <algorithm>

namespace vrpc {
namespace rpc {

double Backoff::Uniform() {
  // xorshift64*
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const uint64_t r = state_ * 0x2545F4914F6CDD1Dull;
  return static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0);
}

absl::Duration Backoff::Next() {
  if (current_ == absl::ZeroDuration()) {
    current_ = policy_.initial;
  } else {
    current_ = std::min(current_ * policy_.multiplier, policy_.max);
  }
  const double factor = 1.0 + policy_.jitter * (2.0 * Uniform() - 1.0);
  return current_ * factor;
}

}  // namespace rpc
}  // namespace vrpc
