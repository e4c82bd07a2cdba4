#include "transport_vsock/virtqueue/broken_latch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace virtqueue {

void BrokenLatch::Latch(absl::Status why) {
  VRPC_CHECK(!why.ok()) << "BrokenLatch::Latch needs an error";
  violations_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  if (reason_.ok()) {
    VRPC_LOG(WARNING) << "virtqueue broken: " << why;
    reason_ = std::move(why);
  }
  broken_.store(true, std::memory_order_release);
}

absl::Status BrokenLatch::status() const {
  absl::MutexLock lock(&mu_);
  return reason_;
}

absl::Status BrokenLatch::BrokenError() const {
  absl::Status reason = status();
  return absl::FailedPreconditionError(absl::StrCat(
      "virtqueue is broken until reset: ",
      reason.ok() ? absl::string_view("(cleared)") : reason.message()));
}

void BrokenLatch::Clear() {
  absl::MutexLock lock(&mu_);
  reason_ = absl::OkStatus();
  broken_.store(false, std::memory_order_release);
}

}  // namespace virtqueue
}  // namespace vrpc
