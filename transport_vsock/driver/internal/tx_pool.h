// File: transport_vsock/driver/internal/tx_pool.h
//
// TxPool: the part of one bus session's DMA memory that transmit payloads
// live in. The application serializes into blocks of it
// (Connection::AllocateWriteBuffer) so the device reads the bytes where they
// were written; the driver takes bounce blocks from it for payloads that
// arrive in ordinary memory (a counted copy).
//
// Blocks are handed out as Slices whose release hook frees them, on
// whichever thread drops the last reference; the pool (and, through
// |keepalive|, the DMA mapping) lives as long as any block does, so a block
// outlives its session safely: it is then simply no longer in the current
// pool (Contains() is false) and gets copied if written.
//
// Allocation is first-fit over a free list with coalescing, in 64-byte
// units. Thread-safe (a mutex): blocks are freed from any thread.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_INTERNAL_TX_POOL_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_INTERNAL_TX_POOL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "core/buffer/slice.h"
#include "transport_vsock/driver/bus.h"

namespace vrpc {
namespace vsock {
namespace internal {

class TxPool : public std::enable_shared_from_this<TxPool> {
 public:
  // Manages |region| (taken as is; its keepalive is held by the pool).
  static std::shared_ptr<TxPool> Create(DmaRegion region);

  TxPool(const TxPool&) = delete;
  TxPool& operator=(const TxPool&) = delete;

  // A block of |size| (> 0) bytes as a Slice; |*data| receives a writable
  // pointer to it. An empty Slice (and null |*data|) when the pool has no
  // room.
  Slice Allocate(size_t size, uint8_t** data);

  // True when [data, data + size) lies inside this pool's memory.
  bool Contains(const uint8_t* data, size_t size) const {
    return data >= region_.host && size <= region_.size &&
           static_cast<size_t>(data - region_.host) <= region_.size - size;
  }
  // The device address of |data|, which must be Contains()ed (DCHECKed).
  uint64_t DeviceAddr(const uint8_t* data) const {
    return region_.device_addr + static_cast<uint64_t>(data - region_.host);
  }

  size_t capacity() const { return region_.size; }
  // Bytes currently allocated (rounded to units). Thread-safe.
  size_t in_use() const;

 private:
  explicit TxPool(DmaRegion region);
  void Free(size_t offset, size_t units);

  static constexpr size_t kUnit = 64;

  const DmaRegion region_;
  mutable std::mutex mu_;
  std::map<size_t, size_t> free_;  // unit offset -> units; guarded by mu_
  size_t used_units_ = 0;          // guarded by mu_
};

}  // namespace internal
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_INTERNAL_TX_POOL_H_
