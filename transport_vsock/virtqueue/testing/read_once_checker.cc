#include "transport_vsock/virtqueue/testing/read_once_checker.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace vrpc {
namespace virtqueue {
namespace testing {

void AccessLog::OnRead(uint64_t addr, uint64_t len) {
  accesses_.push_back(Access{Access::Kind::kRead, addr, len});
  ++reads_;
}

void AccessLog::OnWrite(uint64_t addr, uint64_t len) {
  accesses_.push_back(Access{Access::Kind::kWrite, addr, len});
  ++writes_;
}

void AccessLog::Clear() {
  accesses_.clear();
  reads_ = 0;
  writes_ = 0;
}

void ReadOnceChecker::BeginScope() {
  scope_reads_.clear();
  scope_violations_ = 0;
}

void ReadOnceChecker::OnRead(uint64_t addr, uint64_t len) {
  ++reads_;
  if (len == 0) return;
  // Ranges from GuestMemory never wrap; saturate just in case.
  const uint64_t end = addr + len < addr ? UINT64_MAX : addr + len;
  // The first stored range starting at or after |end| cannot overlap; check
  // the one before it (ranges are disjoint, so only it can reach |addr|)...
  auto it = scope_reads_.lower_bound(end);
  if (it != scope_reads_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > addr) {
      const uint64_t lo = std::max(prev->first, addr);
      const uint64_t hi = std::min(prev->second, end);
      violations_.push_back(absl::StrFormat(
          "guest bytes [0x%x, 0x%x) read twice (earlier read [0x%x, 0x%x), now "
          "[0x%x, 0x%x))",
          lo, hi, prev->first, prev->second, addr, end));
      ++scope_violations_;
      return;
    }
  }
  scope_reads_.emplace(addr, end);
}

void ReadOnceChecker::OnWrite(uint64_t, uint64_t) { ++writes_; }

std::string ReadOnceChecker::Report() const {
  if (violations_.empty()) return "no guest byte read twice";
  return absl::StrJoin(violations_, "\n");
}

}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc
