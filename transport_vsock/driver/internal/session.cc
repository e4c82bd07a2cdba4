#include "transport_vsock/driver/internal/session.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace vsock {
namespace internal {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kPage = 4096;
constexpr uint32_t kEventSize = 4;  // struct virtio_vsock_event { le32 id; }

size_t RoundUp(size_t n, size_t align) { return (n + align - 1) / align * align; }

}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Bus& bus, io::Reactor& reactor,
                                                         const SessionConfig& config) {
  for (uint32_t q = 0; q < kNumQueues; ++q) {
    const uint32_t size = q == kEventQueue ? config.event_queue_size : config.queue_size;
    if (!virtqueue::IsValidQueueSize(size) || size < 4 || size > bus.MaxQueueSize(q)) {
      return absl::InvalidArgumentError(
          absl::StrCat("queue ", q, " size ", size, " (a power of two in [4, ",
                       bus.MaxQueueSize(q), "])"));
    }
  }
  if (config.rx_buffer_size == 0 || config.rx_buffer_size > kMaxPacketPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("rx buffer size ", config.rx_buffer_size, " not in [1, 64 KiB]"));
  }
  if (config.rx_buffers == 0) return absl::InvalidArgumentError("no rx buffers");
  if (config.tx_pool_bytes < 2 * kMaxPacketPayload || config.max_tx_segments == 0) {
    return absl::InvalidArgumentError("tx pool below 128 KiB or max_tx_segments 0");
  }
  std::unique_ptr<Session> session(new Session(bus, reactor, config));
  VRPC_RETURN_IF_ERROR(session->Layout());
  for (uint32_t q = 0; q < kNumQueues; ++q) {
    const virtqueue::DriverQueueConfig& c = session->queues_[q]->config();
    VRPC_RETURN_IF_ERROR(bus.SetupQueue(q, {c.size, c.desc_addr, c.avail_addr, c.used_addr}));
  }
  VRPC_RETURN_IF_ERROR(bus.Start());
  return session;
}

Session::Session(Bus& bus, io::Reactor& reactor, const SessionConfig& config)
    : bus_(bus),
      reactor_(reactor),
      config_(config),
      rx_buffers_(std::min(config.rx_buffers, config.queue_size)) {
  returns_->session = this;
}

Session::~Session() {
  std::lock_guard<std::mutex> lock(returns_->mu);
  returns_->session = nullptr;
  returns_->indices.clear();
}

absl::Status Session::Layout() {
  // One block: rings, tx header slots, event buffers, rx buffers.
  const bool eidx = config_.event_idx;
  size_t offsets[kNumQueues][3];
  size_t total = 0;
  for (uint32_t q = 0; q < kNumQueues; ++q) {
    const uint64_t n = q == kEventQueue ? config_.event_queue_size : config_.queue_size;
    total = RoundUp(total, kPage);
    offsets[q][0] = total;
    total = RoundUp(total + virtqueue::DescTableBytes(n), kAlign);
    offsets[q][1] = total;
    total = RoundUp(total + virtqueue::AvailRingBytes(n, eidx), kAlign);
    offsets[q][2] = total;
    total += virtqueue::UsedRingBytes(n, eidx);
  }
  total = RoundUp(total, kAlign);
  const size_t headers = total;
  total += size_t{config_.queue_size} * kAlign;
  const size_t events = total;
  total += size_t{config_.event_queue_size} * kAlign;
  // A buffer of a page or more starts on a page, so a small packet touches
  // one page, not two.
  const size_t rx_align = kHeaderSize + config_.rx_buffer_size >= kPage ? kPage : kAlign;
  const size_t rx_stride = RoundUp(kHeaderSize + config_.rx_buffer_size, rx_align);
  total = RoundUp(total, rx_align);
  const size_t rx = total;
  total += size_t{rx_buffers_} * rx_stride;
  VRPC_ASSIGN_OR_RETURN(layout_, bus_.AllocateDma(total));
  VRPC_ASSIGN_OR_RETURN(DmaRegion pool, bus_.AllocateDma(config_.tx_pool_bytes));
  tx_pool_ = TxPool::Create(std::move(pool));

  auto at = [this](size_t offset) {
    return RxBuffer{layout_.host + offset, layout_.device_addr + offset};
  };
  const virtqueue::GuestMemory memory = bus_.DmaMemory();
  for (uint32_t q = 0; q < kNumQueues; ++q) {
    virtqueue::DriverQueueConfig c;
    c.size = q == kEventQueue ? config_.event_queue_size : config_.queue_size;
    c.desc_addr = at(offsets[q][0]).addr;
    c.avail_addr = at(offsets[q][1]).addr;
    c.used_addr = at(offsets[q][2]).addr;
    c.event_idx = eidx;
    VRPC_ASSIGN_OR_RETURN(queues_[q], virtqueue::DriverQueue::Create(memory, c, latch_));
  }
  for (uint32_t i = 0; i < config_.queue_size; ++i) {
    tx_headers_.push_back(at(headers + i * kAlign));
    free_tx_slots_.push_back(config_.queue_size - 1 - i);
  }
  for (uint32_t i = 0; i < rx_buffers_; ++i) rx_.push_back(at(rx + i * rx_stride));
  tx_slots_.resize(config_.queue_size);
  for (uint32_t i = 0; i < config_.event_queue_size; ++i) {
    event_.push_back(at(events + i * kAlign));
    const virtqueue::DriverBuffer b{event_.back().addr, kEventSize};
    VRPC_RETURN_IF_ERROR(queues_[kEventQueue]->Add({}, {&b, 1}, i).status());
  }
  VRPC_RETURN_IF_ERROR(queues_[kEventQueue]->PublishAvail().status());
  for (uint32_t i = 0; i < rx_buffers_; ++i) VRPC_RETURN_IF_ERROR(PostRx(i));
  return PublishRx();
}

void Session::Kick(uint32_t index) {
  ++stats_.kicks;
  bus_.Notify(index);
}

void Session::KickAll() {
  for (uint32_t q = 0; q < kNumQueues; ++q) Kick(q);
}

absl::StatusOr<bool> Session::EnableInterrupts(uint32_t index) {
  return queues_[index]->EnableInterrupts();
}

absl::Status Session::DisableInterrupts(uint32_t index) {
  return queues_[index]->DisableInterrupts();
}

std::string Session::DebugString() const {
  std::string out = absl::StrCat("pending_tx=", pending_.size(), " rx_held=", rx_held_,
                                 " tx_pool_in_use=", tx_pool_->in_use(),
                                 " free_tx_slots=", free_tx_slots_.size());
  const char* names[kNumQueues] = {"rx", "tx", "event"};
  for (uint32_t q = 0; q < kNumQueues; ++q) {
    const virtqueue::DriverQueue& dq = *queues_[q];
    absl::StrAppend(&out, " ", names[q], "{free=", dq.free_descriptors(),
                    " outstanding=", dq.outstanding(), " avail=", dq.published_avail_idx(),
                    " used=", dq.last_used_idx(), "}");
  }
  if (broken()) absl::StrAppend(&out, " broken: ", latch_->status().ToString());
  return out;
}

// ---------------------------------------------------------------------------
// rx

absl::Status Session::PostRx(uint32_t index) {
  const virtqueue::DriverBuffer b{rx_[index].addr,
                                  static_cast<uint32_t>(kHeaderSize + config_.rx_buffer_size)};
  return queues_[kRxQueue]->Add({}, {&b, 1}, index).status();
}

absl::Status Session::PublishRx() {
  VRPC_ASSIGN_OR_RETURN(const bool kick, queues_[kRxQueue]->PublishAvail());
  if (kick) Kick(kRxQueue);
  return absl::OkStatus();
}

Slice Session::LendRx(uint32_t index, uint32_t len) {
  ++rx_held_;
  return Slice::ExternalWith(
      rx_[index].host + kHeaderSize, len,
      [returns = returns_, index, keep = layout_.keepalive, reactor = &reactor_]() {
        std::lock_guard<std::mutex> lock(returns->mu);
        if (returns->session == nullptr) return;  // the session ended: never reposted
        returns->indices.push_back(index);
        if (returns->indices.size() > 1) return;  // a Post is on its way
        // Posted under the lock: the session (and the reactor, which
        // outlives it) cannot go away meanwhile.
        reactor->Post([returns] {
          Session* session;
          {
            std::lock_guard<std::mutex> lock(returns->mu);
            session = returns->session;
          }
          if (session != nullptr) session->Recycle();
        });
      });
}

void Session::Recycle() {
  std::vector<uint32_t>& indices = recycled_;
  indices.clear();
  {
    std::lock_guard<std::mutex> lock(returns_->mu);
    indices.swap(returns_->indices);  // both keep a capacity
  }
  rx_held_ -= static_cast<uint32_t>(indices.size());
  if (broken()) return;
  for (uint32_t index : indices) {
    if (!PostRx(index).ok()) return;  // broken meanwhile; the owner resets
  }
  (void)PublishRx();
}

absl::StatusOr<size_t> Session::ReapRx(size_t budget, RxSink sink) {
  size_t n = 0;
  virtqueue::DriverQueue& q = *queues_[kRxQueue];
  while (n < budget) {
    VRPC_ASSIGN_OR_RETURN(std::optional<virtqueue::UsedBuffer> used, q.PopUsed());
    if (!used.has_value()) break;
    ++n;
    const uint32_t index = static_cast<uint32_t>(used->token);
    if (used->len < kHeaderSize) {
      ++stats_.malformed_rx;  // nothing to answer: no header
      VRPC_RETURN_IF_ERROR(PostRx(index));
      continue;
    }
    uint8_t raw[kHeaderSize];
    virtqueue::ReadOnceCopy(raw, rx_[index].host, kHeaderSize);
    const Header header = *DecodeHeader(raw);
    ++stats_.rx_packets;
    const uint32_t room = used->len - static_cast<uint32_t>(kHeaderSize);
    const bool fits = header.len <= room && header.len <= config_.rx_buffer_size;
    if (!fits || header.len == 0) {
      // A len the buffer can't back goes on without payload: the engine
      // answers the mismatch with RST.
      VRPC_RETURN_IF_ERROR(PostRx(index));
      sink(header, SliceChain(), 0);
      continue;
    }
    if (rx_held_ >= rx_buffers_ / 2) {
      // The application sits on half the buffers: copy, so the device
      // keeps buffers for everyone else.
      Slice copy = Slice::Copy(absl::MakeConstSpan(rx_[index].host + kHeaderSize, header.len));
      stats_.rx_copied_bytes += header.len;
      VRPC_RETURN_IF_ERROR(PostRx(index));
      sink(header, SliceChain(std::move(copy)), header.len);
      continue;
    }
    sink(header, SliceChain(LendRx(index, header.len)), 0);
  }
  VRPC_RETURN_IF_ERROR(PublishRx());
  return n;
}

// ---------------------------------------------------------------------------
// events

absl::StatusOr<size_t> Session::ReapEvents(size_t budget,
                                           absl::FunctionRef<void(uint32_t id)> sink) {
  size_t n = 0;
  virtqueue::DriverQueue& q = *queues_[kEventQueue];
  while (n < budget) {
    VRPC_ASSIGN_OR_RETURN(std::optional<virtqueue::UsedBuffer> used, q.PopUsed());
    if (!used.has_value()) break;
    ++n;
    const uint32_t index = static_cast<uint32_t>(used->token);
    uint8_t raw[kEventSize];
    virtqueue::ReadOnceCopy(raw, event_[index].host, kEventSize);
    const virtqueue::DriverBuffer b{event_[index].addr, kEventSize};
    VRPC_RETURN_IF_ERROR(q.Add({}, {&b, 1}, index).status());
    if (used->len < kEventSize) continue;  // not an event
    ++stats_.events;
    sink(uint32_t{raw[0]} | uint32_t{raw[1]} << 8 | uint32_t{raw[2]} << 16 |
         uint32_t{raw[3]} << 24);
  }
  if (n > 0) {
    VRPC_ASSIGN_OR_RETURN(const bool kick, q.PublishAvail());
    if (kick) Kick(kEventQueue);
  }
  return n;
}

// ---------------------------------------------------------------------------
// tx

void Session::Queue(Packet packet) { pending_.push_back(std::move(packet)); }

bool Session::BuildTx(Packet& p, std::vector<virtqueue::DriverBuffer>& bufs, SliceChain& hold,
                      uint32_t* copied) {
  const SliceChain& payload = p.payload;
  // A chain must leave room for others: at most half the ring.
  const size_t max_segments = std::min<size_t>(config_.max_tx_segments, config_.queue_size / 2);
  // Slices in the tx pool go out where they lie; each run of other Slices
  // (an RPC frame header, a heap message) is copied into one bounce block
  // area. Too many segments: the whole payload is copied into one.
  size_t segments = 0;
  size_t foreign = 0;  // bytes outside the pool
  bool in_run = false;
  for (const Slice& s : payload.slices()) {
    if (s.empty()) continue;
    if (tx_pool_->Contains(s.data(), s.size())) {
      ++segments;
      in_run = false;
    } else {
      foreign += s.size();
      if (!in_run) ++segments;
      in_run = true;
    }
  }
  const bool whole_copy = segments > max_segments;
  if (whole_copy) foreign = payload.size();
  uint8_t* bounce_data = nullptr;
  Slice bounce;
  if (foreign > 0) {
    bounce = tx_pool_->Allocate(foreign, &bounce_data);
    if (bounce_data == nullptr) return false;  // pool full: after completions
  }
  if (whole_copy) {
    payload.CopyTo(absl::MakeSpan(bounce_data, foreign));
    bufs.push_back({tx_pool_->DeviceAddr(bounce_data), static_cast<uint32_t>(foreign)});
  } else {
    size_t used = 0;  // of the bounce block
    in_run = false;
    for (const Slice& s : payload.slices()) {
      if (s.empty()) continue;
      if (tx_pool_->Contains(s.data(), s.size())) {
        bufs.push_back({tx_pool_->DeviceAddr(s.data()), static_cast<uint32_t>(s.size())});
        in_run = false;
        continue;
      }
      std::memcpy(bounce_data + used, s.data(), s.size());
      if (in_run) {
        bufs.back().len += static_cast<uint32_t>(s.size());  // extends the run's segment
      } else {
        bufs.push_back({tx_pool_->DeviceAddr(bounce_data + used), static_cast<uint32_t>(s.size())});
      }
      used += s.size();
      in_run = true;
    }
    hold = payload;  // the pool Slices stay put until the device is done
  }
  if (!bounce.empty()) hold.Append(std::move(bounce));
  *copied = static_cast<uint32_t>(foreign);
  stats_.tx_copied_bytes += foreign;
  stats_.tx_zero_copy_bytes += payload.size() - foreign;
  return true;
}

absl::Status Session::FlushTx(TxCopySink on_copied) {
  if (broken()) return latch_->BrokenError();
  virtqueue::DriverQueue& q = *queues_[kTxQueue];
  std::vector<virtqueue::DriverBuffer>& bufs = tx_bufs_;
  while (!pending_.empty() && !free_tx_slots_.empty()) {
    Packet& p = pending_.front();
    // Descriptors first: a bounce block is only worth taking if the chain
    // fits. Otherwise wait for completions (in order: packets never pass
    // each other).
    if (q.free_descriptors() < (p.payload.empty() ? 1u : 2u)) break;
    const uint32_t slot = free_tx_slots_.back();
    bufs.assign(1, {tx_headers_[slot].addr, static_cast<uint32_t>(kHeaderSize)});
    SliceChain hold;
    uint32_t copied = 0;
    if (!p.payload.empty()) {
      if (!BuildTx(p, bufs, hold, &copied)) break;  // pool full: after completions
      if (bufs.size() > q.free_descriptors()) break;
    }
    p.header.len = static_cast<uint32_t>(p.payload.size());
    EncodeHeaderTo(p.header, tx_headers_[slot].host);
    VRPC_RETURN_IF_ERROR(q.Add(bufs, {}, slot).status());
    free_tx_slots_.pop_back();
    tx_slots_[slot].hold = std::move(hold);
    tx_held_bytes_ += tx_slots_[slot].hold.size();
    if (copied > 0) on_copied(p.header, copied);
    ++stats_.tx_packets;
    pending_.pop_front();
  }
  VRPC_ASSIGN_OR_RETURN(const bool kick, q.PublishAvail());
  if (kick) Kick(kTxQueue);
  return absl::OkStatus();
}

absl::StatusOr<size_t> Session::ReapTx(size_t budget) {
  size_t n = 0;
  while (n < budget) {
    VRPC_ASSIGN_OR_RETURN(std::optional<virtqueue::UsedBuffer> used,
                          queues_[kTxQueue]->PopUsed());
    if (!used.has_value()) break;
    ++n;
    const uint32_t slot = static_cast<uint32_t>(used->token);
    tx_held_bytes_ -= tx_slots_[slot].hold.size();
    tx_slots_[slot].hold.Clear();  // the application's Slices, the bounce block
    free_tx_slots_.push_back(slot);
  }
  return n;
}

}  // namespace internal
}  // namespace vsock
}  // namespace vrpc
