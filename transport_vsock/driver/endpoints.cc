// File: transport_vsock/driver/endpoints.cc
//
// The driver's side of its core/transport endpoints: they are the node's
// in-process endpoints (node/inprocess.h); the driver adds, through
// EndpointHooks, write buffers from its tx pool and no connects while the
// device is down.
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transport_vsock/driver/internal/session.h"
#include "transport_vsock/driver/internal/tx_pool.h"
#include "transport_vsock/driver/vsock_driver.h"

namespace vrpc {
namespace vsock {

absl::StatusOr<std::unique_ptr<transport::Listener>> VsockDriver::Listen(uint32_t port,
                                                                         size_t backlog) {
  return node_->Listen(port, backlog);
}

absl::StatusOr<std::unique_ptr<transport::Connector>> VsockDriver::ConnectorTo(uint64_t cid,
                                                                               uint32_t port) {
  if (cid != kCidHost) {
    return absl::InvalidArgumentError(
        absl::StrCat("a virtio-vsock guest reaches only the host (CID 2), not CID ", cid));
  }
  return node_->ConnectorTo(port);
}

absl::Status VsockDriver::CanConnect() {
  return up() ? absl::OkStatus() : absl::UnavailableError("the vsock device is being reset");
}

void VsockDriver::SetPoolSlot(std::shared_ptr<internal::TxPool> pool) {
  std::lock_guard<std::mutex> lock(pool_slot_->mu);
  pool_slot_->pool = std::move(pool);
}

transport::WriteBufferAllocator VsockDriver::write_buffer_allocator() {
  return [slot = pool_slot_](size_t size, uint8_t** data) {
    std::shared_ptr<internal::TxPool> pool;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      pool = slot->pool;
    }
    if (pool != nullptr && size > 0) {
      Slice block = pool->Allocate(size, data);
      if (!block.empty()) return block;
    }
    return Slice::Allocate(size, data);  // copied when written (counted)
  };
}

Slice VsockDriver::AllocateWriteBuffer(size_t size, uint8_t** data) {
  if (session_ != nullptr && size > 0) {
    Slice block = session_->tx_pool().Allocate(size, data);
    if (!block.empty()) return block;
  }
  return Slice::Allocate(size, data);  // copied when written (counted)
}

}  // namespace vsock
}  // namespace vrpc
