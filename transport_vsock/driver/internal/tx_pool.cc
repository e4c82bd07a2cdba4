#include "transport_vsock/driver/internal/tx_pool.h"

#include <iterator>
#include <utility>

namespace vrpc {
namespace vsock {
namespace internal {

std::shared_ptr<TxPool> TxPool::Create(DmaRegion region) {
  return std::shared_ptr<TxPool>(new TxPool(std::move(region)));
}

TxPool::TxPool(DmaRegion region) : region_(std::move(region)) {
  const size_t units = region_.size / kUnit;
  if (units > 0) free_.emplace(0, units);
}

size_t TxPool::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_units_ * kUnit;
}

Slice TxPool::Allocate(size_t size, uint8_t** data) {
  *data = nullptr;
  if (size == 0 || size > region_.size) return Slice();
  const size_t want = (size + kUnit - 1) / kUnit;
  size_t offset = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.begin();
    while (it != free_.end() && it->second < want) ++it;
    if (it == free_.end()) return Slice();
    offset = it->first;
    const size_t left = it->second - want;
    if (left > 0) {  // the run's node now holds what is left: no allocation
      auto node = free_.extract(it);
      node.key() = offset + want;
      node.mapped() = left;
      free_.insert(std::move(node));
    } else {
      free_.erase(it);
    }
    used_units_ += want;
  }
  uint8_t* block = region_.host + offset * kUnit;
  *data = block;
  return Slice::ExternalWith(block, size,
                             [pool = shared_from_this(), offset, want]() { pool->Free(offset, want); });
}

void TxPool::Free(size_t offset, size_t units) {
  std::lock_guard<std::mutex> lock(mu_);
  used_units_ -= units;
  auto next = free_.lower_bound(offset);
  const bool joins_next = next != free_.end() && next->first == offset + units;
  // Merge with the preceding free run (and the following one too).
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += units;
      if (joins_next) {
        prev->second += next->second;
        free_.erase(next);
      }
      return;
    }
  }
  // Merge with the following free run: its node moves down to |offset|.
  if (joins_next) {
    auto node = free_.extract(next);
    node.key() = offset;
    node.mapped() += units;
    free_.insert(std::move(node));
    return;
  }
  free_.emplace_hint(next, offset, units);
}

}  // namespace internal
}  // namespace vsock
}  // namespace vrpc
