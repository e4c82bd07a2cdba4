#include "transport_vsock/device/vsock_device.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace {

constexpr uint64_t kFeatureVersion1 = uint64_t{1} << 32;
constexpr uint64_t kFeatureEventIdx = uint64_t{1} << 29;
constexpr uint64_t kFeatureIndirectDesc = uint64_t{1} << 28;
constexpr uint64_t kFeatureAckedIndirect = kFeatureIndirectDesc;

void SignalEventFd(const vhost_user::SharedFd& fd) {
  if (fd == nullptr || !fd->valid()) return;
  const uint64_t one = 1;
  (void)!::write(fd->get(), &one, sizeof(one));
}

absl::StatusOr<virtqueue::GuestMemory> MemoryFor(
    std::shared_ptr<const vhost_user::MemoryTable> table) {
  std::vector<virtqueue::MemoryRegion> regions;
  for (const vhost_user::MappedRegion& r : table->regions()) {
    regions.push_back({r.guest_addr, r.size, r.host_addr});
  }
  return virtqueue::GuestMemory::Create(std::move(regions), std::move(table));
}

}  // namespace

absl::StatusOr<RingNotifyMode> ParseRingNotifyMode(absl::string_view name) {
  if (name == "interrupt") return RingNotifyMode::kInterrupt;
  if (name == "poll") return RingNotifyMode::kPoll;
  if (name == "adaptive") return RingNotifyMode::kAdaptive;
  return absl::InvalidArgumentError(
      absl::StrCat("ring notify mode \"", name, "\": want interrupt, poll or adaptive"));
}

// Returns a tx chain to the used ring when the last payload Slice sharing it
// is released (on any thread).
class VsockDevice::TxCompletion {
 public:
  // |keepalive| keeps the guest memory mapped while payload Slices point
  // into it, even if the frontend replaces the memory table meanwhile.
  TxCompletion(std::shared_ptr<CompletionQueue> queue, io::Reactor* reactor,
               uint64_t generation, uint16_t head, std::shared_ptr<const void> keepalive)
      : queue_(std::move(queue)),
        reactor_(reactor),
        generation_(generation),
        head_(head),
        keepalive_(std::move(keepalive)) {}
  ~TxCompletion() {
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(queue_->mu);
      if (queue_->device == nullptr) return;
      first = queue_->done.empty();
      queue_->done.emplace_back(generation_, head_);
    }
    // One wake-up per batch: later completions ride on the same post.
    if (first) {
      reactor_->Post([queue = queue_] {
        VsockDevice* device;
        {
          std::lock_guard<std::mutex> lock(queue->mu);
          device = queue->device;
        }
        if (device != nullptr) device->DrainCompletions();
      });
    }
  }

 private:
  std::shared_ptr<CompletionQueue> queue_;
  io::Reactor* reactor_;
  uint64_t generation_;
  uint16_t head_;
  std::shared_ptr<const void> keepalive_;
};

absl::StatusOr<std::unique_ptr<VsockDevice>> VsockDevice::Create(
    const VsockDeviceOptions& options, io::Reactor& reactor) {
  std::unique_ptr<VsockDevice> device(new VsockDevice(options, reactor));
  VsockHostOptions host_options = options.host;
  // A sleeping guest is woken early by our CREDIT_UPDATE (engine.h).
  host_options.engine.credit_update_on_drain = options.notify_mode != RingNotifyMode::kPoll;
  auto host = VsockHost::Create(host_options, reactor, *device);
  if (!host.ok()) return host.status();
  device->host_ = *std::move(host);
  return device;
}

VsockDevice::VsockDevice(const VsockDeviceOptions& options, io::Reactor& reactor)
    : options_(options), reactor_(reactor) {
  completions_->device = this;
}

VsockDevice::~VsockDevice() {
  {
    std::lock_guard<std::mutex> lock(completions_->mu);
    completions_->device = nullptr;
  }
  for (uint32_t i = 0; i < 3; ++i) {
    if (rings_[i].kick_watch != 0) reactor_.Unwatch(rings_[i].kick_watch);
  }
  poller_.Stop();
  host_.reset();
}

uint64_t VsockDevice::Features() const {
  return kFeatureVersion1 | kFeatureEventIdx | kFeatureAckedIndirect;
}

absl::StatusOr<std::vector<uint8_t>> VsockDevice::ReadConfig(uint32_t offset, uint32_t size) {
  // struct virtio_vsock_config { le64 guest_cid; }
  uint8_t config[8];
  const uint64_t cid = options_.host.guest_cid;
  for (int i = 0; i < 8; ++i) config[i] = static_cast<uint8_t>(cid >> (8 * i));
  if (offset > sizeof(config) || size > sizeof(config) - offset) {
    return absl::OutOfRangeError("config read outside guest_cid");
  }
  return std::vector<uint8_t>(config + offset, config + offset + size);
}

void VsockDevice::OnRingStarted(const vhost_user::RingConfig& ring,
                                std::shared_ptr<const vhost_user::MemoryTable> memory) {
  if (ring.index >= 3) return;
  Ring& r = rings_[ring.index];
  auto guest_memory = MemoryFor(std::move(memory));
  if (!guest_memory.ok()) return Violation(guest_memory.status());
  virtqueue::DeviceQueueConfig config;
  config.size = ring.num;
  config.desc_addr = ring.desc_guest_addr;
  config.avail_addr = ring.avail_guest_addr;
  config.used_addr = ring.used_guest_addr;
  config.next_avail = ring.base;
  config.event_idx = ring.event_idx;
  config.indirect_desc = true;
  auto queue = virtqueue::DeviceQueue::Create(*std::move(guest_memory), config, latch_);
  if (!queue.ok()) return Violation(queue.status());
  r.queue = *std::move(queue);
  r.generation = next_generation_++;
  // Only a session after one that ended (OnReset reset the connections)
  // has something to announce.
  if (ring.index == kEvent && earlier_session_ran_) reset_event_pending_ = true;
  if (ring.index == kTx) session_ran_ = true;
  // Buffers may be waiting already (a restarted ring): OnRingUpdated looks
  // now if the ring is enabled, or when SET_VRING_ENABLE enables it.
  OnRingUpdated(ring);
}

void VsockDevice::OnRingUpdated(const vhost_user::RingConfig& ring) {
  if (ring.index >= 3) return;
  Ring& r = rings_[ring.index];
  r.call = ring.call;
  r.err = ring.err;
  r.enabled = ring.enabled;
  if (r.kick != ring.kick || r.kick_watch == 0) {
    r.kick = ring.kick;
    WatchKick(ring.index);
  }
  if (!r.enabled) return;
  if (ring.index == kTx) ProcessTx();
  if (ring.index == kRx) ProcessRx();
  if (ring.index == kEvent) ProcessEvents();
  // Polling modes poll an enabled ring from now on, kicked or not.
  if (ring.index != kEvent && options_.notify_mode != RingNotifyMode::kInterrupt) {
    StartPolling();
  }
}

void VsockDevice::WatchKick(uint32_t index) {
  Ring& r = rings_[index];
  if (r.kick_watch != 0) reactor_.Unwatch(r.kick_watch);
  r.kick_watch = 0;
  if (r.kick == nullptr || !r.kick->valid()) return;
  const int fd = r.kick->get();
  auto watch = reactor_.Watch(fd, io::kReadable, [this, index, fd](uint32_t) {
    uint64_t count;
    (void)!::read(fd, &count, sizeof(count));
    if (index == kTx) ProcessTx();
    if (index == kRx) ProcessRx();
    if (index == kEvent) ProcessEvents();
    if (index != kEvent && options_.notify_mode != RingNotifyMode::kInterrupt) StartPolling();
  });
  if (!watch.ok()) {
    VRPC_LOG(ERROR) << "watching kick of ring " << index << ": " << watch.status();
    return;
  }
  r.kick_watch = *watch;
}

uint16_t VsockDevice::OnRingStopped(uint32_t index) {
  if (index >= 3) return 0;
  Ring& r = rings_[index];
  if (r.kick_watch != 0) reactor_.Unwatch(r.kick_watch);
  const uint16_t last = r.queue ? r.queue->last_avail_idx() : 0;
  r = Ring();  // chains still held by payload Slices complete into nothing
  if (index == kRx) pending_rx_.clear();
  return last;
}

void VsockDevice::OnReset() {
  for (uint32_t i = 0; i < 3; ++i) (void)OnRingStopped(i);
  polling_ = false;
  latch_->Clear();
  tx_paused_ = false;
  reset_event_pending_ = false;
  earlier_session_ran_ = earlier_session_ran_ || session_ran_;
  session_ran_ = false;
  host_->OnTransportReset(absl::UnavailableError("vhost-user frontend disconnected"));
  pending_rx_.clear();
}

bool VsockDevice::Usable(uint32_t index) const {
  const Ring& r = rings_[index];
  return r.queue != nullptr && r.enabled && !latch_->IsBroken();
}

void VsockDevice::Violation(const absl::Status& why) {
  if (!latch_->IsBroken()) latch_->Latch(why);
  VRPC_LOG(WARNING) << "vsock device for guest " << options_.host.guest_cid
                    << " is broken until reset: " << why;
  for (const Ring& r : rings_) SignalEventFd(r.err);
}

void VsockDevice::Notify(uint32_t index) {
  Ring& r = rings_[index];
  if (r.queue != nullptr && r.queue->ShouldNotify()) SignalEventFd(r.call);
}

void VsockDevice::PostToSelf(void (*fn)(VsockDevice&)) {
  reactor_.Post([queue = completions_, fn] {
    VsockDevice* device;
    {
      std::lock_guard<std::mutex> lock(queue->mu);
      device = queue->device;
    }
    if (device != nullptr) fn(*device);
  });
}

// ---------------------------------------------------------------------------
// Polling. While polling_, the tx and rx queues keep notifications disabled
// and a reactor poller (PollOnce, every turn) looks at both rings.

void VsockDevice::StartPolling() {
  if (!Usable(kTx) && !Usable(kRx)) return;
  idle_polls_ = 0;
  if (!polling_) {
    polling_ = true;
    for (uint32_t index : {kTx, kRx}) {
      if (Usable(index) && !rings_[index].queue->DisableNotifications().ok()) {
        return Violation(latch_->status());
      }
    }
  }
  poller_.Start(reactor_, [this] { PollOnce(); });
}

void VsockDevice::PollOnce() {
  if (!polling_) return poller_.Stop();  // stopped elsewhere (reset)
  if (!Usable(kTx) && !Usable(kRx)) {
    polling_ = false;  // rings stopped or broken: kicks (if any) restart us
    return poller_.Stop();
  }
  ++stats_.polls;
  const uint64_t before = stats_.tx_packets + stats_.rx_packets;
  ProcessTx();
  ProcessRx();
  const bool worked = stats_.tx_packets + stats_.rx_packets != before;
  idle_polls_ = worked ? 0 : idle_polls_ + 1;
  if (options_.notify_mode == RingNotifyMode::kAdaptive &&
      idle_polls_ >= options_.adaptive_idle_polls) {
    return StopPollingAndArm();
  }
}

void VsockDevice::StopPollingAndArm() {
  polling_ = false;
  poller_.Stop();
  bool more = false;
  for (uint32_t index : {kTx, kRx}) {
    if (!Usable(index)) continue;
    auto arrived = rings_[index].queue->EnableNotifications();
    if (!arrived.ok()) return Violation(arrived.status());
    // Posted rx buffers are no work while no packet waits for them (a
    // guest keeps them posted all the time).
    if (index == kRx && pending_rx_.empty()) continue;
    more = more || *arrived;
  }
  if (more) StartPolling();  // buffers raced the re-arm: no kick will come
}

// ---------------------------------------------------------------------------
// tx: guest -> host

void VsockDevice::ProcessTx() {
  if (!Usable(kTx)) return;
  virtqueue::DeviceQueue& q = *rings_[kTx].queue;
  if (pending_rx_.size() >= options_.max_pending_rx) {
    tx_paused_ = true;  // resumed by ProcessRx once the guest takes packets
    return;
  }
  if (!q.DisableNotifications().ok()) return Violation(q.latch().status());
  uint32_t budget = options_.tx_budget;
  while (Usable(kTx) && pending_rx_.size() < options_.max_pending_rx) {
    auto chain = q.Pop();
    if (!chain.ok()) return Violation(chain.status());
    if (!chain->has_value()) {
      if (polling_) break;  // the next poll looks again
      auto more = q.EnableNotifications();
      if (!more.ok()) return Violation(more.status());
      if (!*more) break;
      if (!q.DisableNotifications().ok()) return Violation(q.latch().status());
      continue;
    }
    HandleTxChain(**chain);
    if (--budget == 0) {
      // Yield: other VMs and sockets get their turn; continue soon.
      if (!tx_continuation_posted_ && !polling_) {
        tx_continuation_posted_ = true;
        PostToSelf([](VsockDevice& device) {
          device.tx_continuation_posted_ = false;
          device.ProcessTx();
        });
      }
      break;
    }
  }
  if (pending_rx_.size() >= options_.max_pending_rx) tx_paused_ = true;
  Notify(kTx);
}

void VsockDevice::HandleTxChain(const virtqueue::Chain& chain) {
  virtqueue::DeviceQueue& q = *rings_[kTx].queue;
  ++stats_.tx_packets;
  uint8_t raw[kHeaderSize];
  if (!q.ReadChain(chain, 0, absl::MakeSpan(raw)).ok()) {
    if (q.broken()) return Violation(q.latch().status());
    ++stats_.malformed_chains;  // shorter than a header: nothing to answer
    if (!q.PushUsed(chain.head(), 0).ok()) Violation(q.latch().status());
    return;
  }
  const Header header = *DecodeHeader(raw);
  const uint64_t available = chain.readable_bytes() - kHeaderSize;
  // A len the chain can't back (or over 64 KiB) goes on with no payload: the
  // engine answers the mismatch with RST.
  const uint32_t take = header.len <= kMaxPacketPayload && header.len <= available ? header.len : 0;
  if (take < options_.copy_below) {  // copied, and the chain completed now
    SliceChain payload;
    if (take > 0 && !CopyTxPayload(chain, take, payload)) return Violation(q.latch().status());
    if (!q.PushUsed(chain.head(), 0).ok()) return Violation(q.latch().status());
    host_->OnGuestPacket(header, std::move(payload), take);
    return;
  }
  auto completion = std::make_shared<TxCompletion>(
      completions_, &reactor_, rings_[kTx].generation, chain.head(), q.memory().keepalive());
  SliceChain payload;
  // Chains whose payload the host already dropped may still count as in
  // flight until their completion task runs: settle them first.
  if (q.in_flight() > q.size() / 2) DrainCompletions();
  const bool copy = q.in_flight() > q.size() / 2;
  if (take > 0 && copy) {
    if (!CopyTxPayload(chain, take, payload)) return Violation(q.latch().status());
  } else if (take > 0) {
    absl::Status s = q.ForEachReadableSegment(
        chain, kHeaderSize, take, [&](uint64_t, absl::Span<uint8_t> host) {
          payload.Append(Slice::External(host.data(), host.size(),
                                         [completion]() mutable { completion.reset(); }));
        });
    if (!s.ok()) return Violation(q.latch().status());
    stats_.zero_copy_bytes += take;
  }
  completion.reset();  // now only the payload Slices hold the chain
  host_->OnGuestPacket(header, std::move(payload), copy ? take : 0);
}

bool VsockDevice::CopyTxPayload(const virtqueue::Chain& chain, uint32_t take,
                                SliceChain& payload) {
  uint8_t* data = nullptr;
  Slice copied = Slice::Allocate(take, &data);
  if (!rings_[kTx].queue->ReadChain(chain, kHeaderSize, absl::MakeSpan(data, take)).ok()) {
    return false;
  }
  payload.Append(std::move(copied));
  stats_.copied_bytes += take;
  return true;
}

std::string VsockDevice::DebugString() const {
  std::string out = absl::StrCat("polling=", polling_, " poller=", poller_.active(),
                                 " tx_paused=", tx_paused_, " pending_rx=", pending_rx_.size());
  static const char* const kNames[] = {"rx", "tx", "event"};
  for (uint32_t i = 0; i < 3; ++i) {
    const Ring& r = rings_[i];
    if (r.queue == nullptr) continue;
    absl::StrAppend(&out, " ", kNames[i], "{enabled=", r.enabled,
                    " last_avail=", r.queue->last_avail_idx(), " used=", r.queue->used_idx(),
                    " in_flight=", r.queue->in_flight(), "}");
  }
  return out;
}

void VsockDevice::DrainCompletions() {
  std::vector<std::pair<uint64_t, uint16_t>> done;
  {
    std::lock_guard<std::mutex> lock(completions_->mu);
    done.swap(completions_->done);
  }
  Ring& tx = rings_[kTx];
  if (tx.queue == nullptr || latch_->IsBroken()) return;
  std::vector<virtqueue::UsedElement> used;
  for (const auto& [generation, head] : done) {
    if (generation == tx.generation) used.push_back({head, 0});
  }
  if (used.empty()) return;
  if (!tx.queue->PushUsedBatch(used).ok()) {
    VRPC_LOG(ERROR) << "tx completion rejected (device bug)";
    return;
  }
  Notify(kTx);
}

// ---------------------------------------------------------------------------
// rx: host -> guest

void VsockDevice::SendToPeer(std::vector<Packet>& packets) {
  for (Packet& p : packets) pending_rx_.push_back(std::move(p));
  packets.clear();
  ProcessRx();
}

void VsockDevice::ProcessRx() {
  if (!Usable(kRx)) return;
  virtqueue::DeviceQueue& q = *rings_[kRx].queue;
  bool wrote = false;
  while (!pending_rx_.empty() && Usable(kRx)) {
    auto chain = q.Pop();
    if (!chain.ok()) return Violation(chain.status());
    if (!chain->has_value()) {
      if (polling_) break;  // the next poll looks again
      auto more = q.EnableNotifications();
      if (!more.ok()) return Violation(more.status());
      if (!*more) break;  // the guest kicks when it posts buffers
      continue;
    }
    if (!WriteRxPacket(**chain)) return;
    wrote = true;
  }
  if (wrote) Notify(kRx);
  if (tx_paused_ && pending_rx_.size() < options_.max_pending_rx / 2) {
    tx_paused_ = false;
    ProcessTx();
  }
}

// Writes (the front part of) pending_rx_.front() into |chain|.
bool VsockDevice::WriteRxPacket(const virtqueue::Chain& chain) {
  virtqueue::DeviceQueue& q = *rings_[kRx].queue;
  if (chain.writable_bytes() < kHeaderSize) {
    // A buffer that can't hold a header: return it unused.
    if (!q.PushUsed(chain.head(), 0).ok()) Violation(q.latch().status());
    return !latch_->IsBroken();
  }
  Packet& p = pending_rx_.front();
  const size_t room = chain.writable_bytes() - kHeaderSize;
  const bool last = p.payload.size() <= room;
  Header h = p.header;
  SliceChain part = p.payload.TakePrefix(last ? p.payload.size() : room);
  h.len = static_cast<uint32_t>(part.size());
  if (!last && h.op_code() == Op::kRw) h.flags &= ~(kSeqEom | kSeqEor);
  uint8_t raw[kHeaderSize];
  EncodeHeaderTo(h, raw);
  absl::Status s = q.WriteChain(chain, 0, absl::MakeConstSpan(raw));
  uint64_t offset = kHeaderSize;
  for (const Slice& slice : part.slices()) {
    if (!s.ok()) break;
    s = q.WriteChain(chain, offset, slice.span());
    offset += slice.size();
  }
  if (!s.ok() || !q.PushUsed(chain.head(), static_cast<uint32_t>(offset)).ok()) {
    Violation(q.latch().status().ok() ? s : q.latch().status());
    return false;
  }
  ++stats_.rx_packets;
  if (last) pending_rx_.pop_front();
  return true;
}

// ---------------------------------------------------------------------------
// event queue: VIRTIO_VSOCK_EVENT_TRANSPORT_RESET after a frontend change

void VsockDevice::ProcessEvents() {
  if (!reset_event_pending_ || !Usable(kEvent)) return;
  virtqueue::DeviceQueue& q = *rings_[kEvent].queue;
  auto chain = q.Pop();
  if (!chain.ok()) return Violation(chain.status());
  if (!chain->has_value()) {
    auto more = q.EnableNotifications();
    if (!more.ok()) return Violation(more.status());
    if (*more) ProcessEvents();  // a buffer raced the re-arm: no kick will come
    return;
  }
  const uint8_t event[4] = {0, 0, 0, 0};  // le32 id = TRANSPORT_RESET
  if (!q.WriteChain(**chain, 0, absl::MakeConstSpan(event)).ok() ||
      !q.PushUsed((*chain)->head(), sizeof(event)).ok()) {
    return Violation(q.latch().status());
  }
  reset_event_pending_ = false;
  ++stats_.transport_resets_sent;
  Notify(kEvent);
}

}  // namespace vsock
}  // namespace vrpc
