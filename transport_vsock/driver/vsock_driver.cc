#include "transport_vsock/driver/vsock_driver.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"
#include "transport_vsock/driver/internal/session.h"

namespace vrpc {
namespace vsock {

using internal::kEventQueue;
using internal::kNumQueues;
using internal::kRxQueue;
using internal::kTxQueue;

namespace {

constexpr uint32_t kEventTransportReset = 0;
// Held tx bytes above which an rx interrupt reaps tx completions first.
constexpr size_t kEarlyTxReapBytes = 128 * 1024;

// Reads and validates virtio_vsock_config.guest_cid.
absl::StatusOr<uint64_t> ReadGuestCid(Bus& bus) {
  uint8_t raw[8];
  VRPC_RETURN_IF_ERROR(bus.ReadConfig(0, absl::MakeSpan(raw)));
  uint64_t cid = 0;
  for (int i = 7; i >= 0; --i) cid = (cid << 8) | raw[i];
  if (!IsValidGuestCid(cid)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the device reports guest_cid ", cid, ", a reserved CID"));
  }
  return cid;
}

}  // namespace

absl::StatusOr<DriverNotifyMode> ParseDriverNotifyMode(absl::string_view name) {
  if (name == "interrupt") return DriverNotifyMode::kInterrupt;
  if (name == "poll") return DriverNotifyMode::kPoll;
  if (name == "adaptive") return DriverNotifyMode::kAdaptive;
  return absl::InvalidArgumentError(
      absl::StrCat("notify mode \"", name, "\": want interrupt, poll or adaptive"));
}

absl::StatusOr<std::unique_ptr<VsockDriver>> VsockDriver::Create(
    std::unique_ptr<Bus> bus, io::Reactor& reactor, const VsockDriverOptions& options) {
  if (bus == nullptr) return absl::InvalidArgumentError("no bus");
  std::unique_ptr<VsockDriver> driver(new VsockDriver(std::move(bus), reactor, options));
  VRPC_RETURN_IF_ERROR(driver->BringUp());
  return driver;
}

VsockDriver::VsockDriver(std::unique_ptr<Bus> bus, io::Reactor& reactor,
                         const VsockDriverOptions& options)
    : options_(options), bus_(std::move(bus)), reactor_(reactor) {}

VsockDriver::~VsockDriver() {
  *self_ = nullptr;  // posted tasks see the driver gone
  if (node_ != nullptr) node_->SetEndpointHooks(nullptr);
  if (reconnect_timer_ != 0) reactor_.CancelTimer(reconnect_timer_);
  for (io::WatchId w : watches_) reactor_.Unwatch(w);
  poller_.Stop();
  SetPoolSlot(nullptr);
  session_.reset();
}

VsockDriverStats VsockDriver::stats() const {
  VsockDriverStats out = stats_;
  if (session_ != nullptr) {
    const internal::SessionStats& s = session_->stats();
    out.rx_packets += s.rx_packets;
    out.tx_packets += s.tx_packets;
    out.rx_copied_bytes += s.rx_copied_bytes;
    out.tx_copied_bytes += s.tx_copied_bytes;
    out.tx_zero_copy_bytes += s.tx_zero_copy_bytes;
    out.kicks += s.kicks;
    out.tx_pool_in_use = session_->tx_pool().in_use();
    out.tx_held_bytes = session_->tx_held_bytes();
  }
  return out;
}

std::string VsockDriver::DebugString() const {
  if (session_ == nullptr) return absl::StrCat(bus_->name(), ": down");
  return absl::StrCat(bus_->name(), ": guest CID ", guest_cid_, " ", session_->DebugString());
}

void VsockDriver::CollectStats() {
  if (session_ == nullptr) return;
  const VsockDriverStats all = stats();
  stats_ = all;
}

// ---------------------------------------------------------------------------
// Session lifecycle

absl::Status VsockDriver::BringUp() {
  absl::Status s = [&]() -> absl::Status {
    VRPC_RETURN_IF_ERROR(bus_->Reset());
    VRPC_ASSIGN_OR_RETURN(negotiated_,
                          bus_->NegotiateFeatures(kVirtioFeatureVersion1 | options_.features));
    VRPC_ASSIGN_OR_RETURN(const uint64_t cid, ReadGuestCid(*bus_));
    if (node_ == nullptr) {
      EngineConfig config = options_.engine;
      // A sleeping device is woken early by our CREDIT_UPDATE (engine.h).
      config.credit_update_on_drain = options_.notify_mode != DriverNotifyMode::kPoll;
      config.local_cid = cid;
      config.peer_cid = kCidHost;
      VRPC_ASSIGN_OR_RETURN(node_, VsockNode::Create(config, reactor_, *this));
      node_->SetEndpointHooks(this);
    } else if (cid != guest_cid_) {
      VRPC_RETURN_IF_ERROR(node_->engine().SetLocalCid(cid));
    }
    guest_cid_ = cid;
    internal::SessionConfig config;
    config.queue_size = options_.queue_size;
    config.event_queue_size = options_.event_queue_size;
    config.rx_buffer_size = options_.rx_buffer_size;
    config.rx_buffers = options_.rx_buffers;
    config.tx_pool_bytes = options_.tx_pool_bytes;
    config.event_idx = (negotiated_ & kVirtioFeatureEventIdx) != 0;
    VRPC_ASSIGN_OR_RETURN(session_, internal::Session::Create(*bus_, reactor_, config));
    return absl::OkStatus();
  }();
  if (!s.ok()) {
    session_.reset();
    ++stats_.failed_bring_ups;
    return s;
  }
  SetPoolSlot(session_->shared_tx_pool());
  ++stats_.bring_ups;
  session_started_at_ = reactor_.Now();
  failure_ = absl::OkStatus();
  WatchSession();
  if (options_.notify_mode == DriverNotifyMode::kInterrupt) {
    for (uint32_t q = 0; q < kNumQueues; ++q) Service(q);  // arms interrupts
  } else {
    StartPolling();
  }
  session_->KickAll();
  return absl::OkStatus();
}

void VsockDriver::WatchSession() {
  auto watch = [this](int fd, absl::AnyInvocable<void(uint32_t)> fn) {
    absl::StatusOr<io::WatchId> id = reactor_.Watch(fd, io::kReadable, std::move(fn));
    if (!id.ok()) return Fail(id.status());
    watches_.push_back(*id);
  };
  for (int fd : bus_->control_fds()) {
    watch(fd, [this](uint32_t) { OnControl(); });
  }
  if (options_.notify_mode == DriverNotifyMode::kPoll) return;
  for (uint32_t q = 0; q < kNumQueues; ++q) {
    const int fd = bus_->InterruptFd(q);
    if (fd >= 0) watch(fd, [this, q, fd](uint32_t) { OnInterrupt(q, fd); });
  }
}

void VsockDriver::Fail(absl::Status why) {
  if (!failure_.ok() || session_ == nullptr) return;
  failure_ = std::move(why);
  if (!absl::IsUnavailable(failure_)) ++stats_.violations;
  VRPC_LOG(WARNING) << "vsock driver on " << bus_->name() << ": resetting the device: "
                    << failure_;
  if (teardown_posted_) return;
  teardown_posted_ = true;
  PostToSelf([](VsockDriver& d) {
    d.teardown_posted_ = false;
    d.TearDown();
  });
}

void VsockDriver::TearDown() {
  if (session_ == nullptr) return;
  for (io::WatchId w : watches_) reactor_.Unwatch(w);
  watches_.clear();
  polling_ = false;
  poller_.Stop();
  CollectStats();
  SetPoolSlot(nullptr);
  session_.reset();  // Slices the application holds stay valid
  ++stats_.device_losses;
  session_lost_at_ = reactor_.Now();
  // kClosed (UNAVAILABLE) to every connection; no packets.
  node_->OnTransportReset(
      absl::UnavailableError(absl::StrCat("vsock device reset: ", failure_.message())));
  // Back off only when sessions die young (a device that fails at once).
  if (session_lost_at_ - session_started_at_ > options_.reconnect_max) {
    backoff_ = absl::ZeroDuration();
  }
  ScheduleReconnect();
}

void VsockDriver::ScheduleReconnect() {
  const absl::Duration delay = backoff_;
  backoff_ = std::min(options_.reconnect_max, std::max(options_.reconnect_min, backoff_ * 2));
  reconnect_timer_ = reactor_.RunAfter(delay, [self = self_] {
    if (*self == nullptr) return;
    (*self)->reconnect_timer_ = 0;
    (*self)->Reconnect();
  });
}

void VsockDriver::Reconnect() {
  if (session_ != nullptr) return;
  absl::Status s = BringUp();
  if (s.ok()) {
    VRPC_LOG(INFO) << "vsock driver on " << bus_->name() << ": device up again, guest CID "
                   << guest_cid_;
    return;
  }
  VRPC_LOG(DEBUG) << "vsock driver on " << bus_->name() << ": bring-up failed: " << s;
  ScheduleReconnect();
}

void VsockDriver::PostToSelf(void (*fn)(VsockDriver&)) {
  reactor_.Post([self = self_, fn] {
    if (*self != nullptr) fn(**self);
  });
}

// ---------------------------------------------------------------------------
// Notifications

void VsockDriver::OnControl() {
  if (session_ == nullptr || !failure_.ok()) return;
  absl::Status s = bus_->HandleControl();
  if (!s.ok()) Fail(std::move(s));
}

void VsockDriver::OnInterrupt(uint32_t index, int fd) {
  uint64_t count;
  (void)!::read(fd, &count, sizeof(count));
  ++stats_.interrupts;
  if (session_ == nullptr || !failure_.ok()) return;
  if (options_.notify_mode == DriverNotifyMode::kAdaptive) return StartPolling();
  // As in PollOnce, tx completions first, but only while large payloads
  // are out (a stream): then the rx work (a window update, say) finds their
  // pool blocks free when it serializes the next message. For a small call
  // the early reap would sit on the response's path for nothing.
  if (index == kRxQueue && session_->tx_held_bytes() >= kEarlyTxReapBytes) {
    (void)ServiceTx();
    if (session_ == nullptr || !failure_.ok()) return;
  }
  Service(index);
}

VsockDriver::Progress VsockDriver::ServiceQueue(uint32_t index) {
  if (index == kRxQueue) return ServiceRx();
  if (index == kTxQueue) return ServiceTx();
  return ServiceEvents();
}

void VsockDriver::Service(uint32_t index) {
  // Drain, re-arm, and drain again what raced the re-arm (a few rounds,
  // then yield to the rest of the reactor).
  for (int round = 0; round < 4; ++round) {
    if (session_ == nullptr || !failure_.ok()) return;
    const Progress progress = ServiceQueue(index);
    if (session_ == nullptr || !failure_.ok() || progress == Progress::kPaused) return;
    if (progress == Progress::kMore) break;
    if (polling_) return;  // the next poll looks again
    absl::StatusOr<bool> more = session_->EnableInterrupts(index);
    if (!more.ok()) return Fail(more.status());
    if (!*more) return;
  }
  if (polling_ || continue_posted_[index]) return;
  continue_posted_[index] = true;
  static void (*const kContinue[3])(VsockDriver&) = {
      [](VsockDriver& d) { d.continue_posted_[0] = false, d.Service(0); },
      [](VsockDriver& d) { d.continue_posted_[1] = false, d.Service(1); },
      [](VsockDriver& d) { d.continue_posted_[2] = false, d.Service(2); },
  };
  PostToSelf(kContinue[index]);
}

VsockDriver::Progress VsockDriver::ServiceRx() {
  if (session_->pending_tx() >= options_.max_pending_tx) {
    rx_paused_ = true;  // ServiceTx resumes once the device takes packets
    return Progress::kPaused;
  }
  const absl::Time now = reactor_.Now();
  // The whole batch into the engine, then one Flush: one tx publish.
  absl::StatusOr<size_t> n = session_->ReapRx(
      options_.budget, [&](const Header& header, SliceChain payload, uint32_t copied) {
        node_->ChargeCopy(header, copied, /*rx=*/true);
        node_->engine().OnPacket(header, std::move(payload), now, node_->actions());
      });
  if (!n.ok()) {
    Fail(n.status());
    return Progress::kDrained;
  }
  node_->Flush();
  return *n >= options_.budget ? Progress::kMore : Progress::kDrained;
}

VsockDriver::Progress VsockDriver::ServiceTx() {
  absl::StatusOr<size_t> n = session_->ReapTx(options_.budget);
  if (!n.ok()) {
    Fail(n.status());
    return Progress::kDrained;
  }
  // Queued packets take the freed descriptors.
  if (absl::Status s = session_->FlushTx([this](const Header& h, uint32_t copied) {
        node_->ChargeCopy(h, copied, /*rx=*/false);
      });
      !s.ok()) {
    Fail(std::move(s));
    return Progress::kDrained;
  }
  if (rx_paused_ && session_ != nullptr &&
      session_->pending_tx() < options_.max_pending_tx / 2) {
    rx_paused_ = false;
    Service(kRxQueue);
  }
  return *n >= options_.budget ? Progress::kMore : Progress::kDrained;
}

VsockDriver::Progress VsockDriver::ServiceEvents() {
  bool reset = false;
  absl::StatusOr<size_t> n = session_->ReapEvents(options_.budget, [&](uint32_t id) {
    if (id == kEventTransportReset) reset = true;  // other ids: not defined, ignored
  });
  if (!n.ok()) {
    Fail(n.status());
    return Progress::kDrained;
  }
  if (reset) OnTransportReset();
  return *n >= options_.budget ? Progress::kMore : Progress::kDrained;
}

void VsockDriver::OnTransportReset() {
  ++stats_.transport_resets;
  Engine& engine = node_->engine();
  engine.ResetAll(absl::UnavailableError("vsock transport reset by the device"),
                  node_->actions());
  absl::StatusOr<uint64_t> cid = ReadGuestCid(*bus_);
  if (cid.ok() && *cid != guest_cid_) {
    absl::Status s = engine.SetLocalCid(*cid);
    if (s.ok()) {
      VRPC_LOG(INFO) << "vsock driver: guest CID " << guest_cid_ << " -> " << *cid;
      guest_cid_ = *cid;
    } else {
      cid = s;
    }
  }
  node_->Flush();
  if (!cid.ok()) Fail(cid.status());
}

void VsockDriver::StartPolling() {
  if (session_ == nullptr || !failure_.ok()) return;
  idle_polls_ = 0;
  if (!polling_) {
    polling_ = true;
    for (uint32_t q = 0; q < kNumQueues; ++q) {
      if (absl::Status s = session_->DisableInterrupts(q); !s.ok()) return Fail(s);
    }
  }
  poller_.Start(reactor_, [this] { PollOnce(); });
}

void VsockDriver::PollOnce() {
  if (!polling_ || session_ == nullptr || !failure_.ok()) return poller_.Stop();
  ++stats_.polls;
  const internal::SessionStats before = session_->stats();
  // tx first: its completions return tx-pool blocks before the rx work
  // (a window update, say) has the application serialize its next message.
  for (uint32_t q : {kTxQueue, kRxQueue, kEventQueue}) {
    if (session_ == nullptr) break;
    (void)ServiceQueue(q);
  }
  if (session_ == nullptr || !failure_.ok()) return;
  const internal::SessionStats& after = session_->stats();
  const bool worked = after.rx_packets + after.tx_packets + after.events + after.malformed_rx !=
                      before.rx_packets + before.tx_packets + before.events +
                          before.malformed_rx;
  idle_polls_ = worked ? 0 : idle_polls_ + 1;
  if (options_.notify_mode == DriverNotifyMode::kAdaptive &&
      idle_polls_ >= options_.adaptive_spin) {
    polling_ = false;
    poller_.Stop();
    bool more = false;
    for (uint32_t q = 0; q < kNumQueues; ++q) {
      absl::StatusOr<bool> m = session_->EnableInterrupts(q);
      if (!m.ok()) return Fail(m.status());
      more = more || *m;
    }
    if (!more) return;  // sleep until an interrupt
    return StartPolling();  // completions raced the re-arm
  }
}

// ---------------------------------------------------------------------------
// Packets out

void VsockDriver::SendToPeer(std::vector<Packet>& packets) {
  if (session_ == nullptr || !failure_.ok()) {
    packets.clear();  // no device: dropped (connections were reset)
    return;
  }
  for (Packet& p : packets) session_->Queue(std::move(p));
  packets.clear();
  absl::Status s = session_->FlushTx(
      [this](const Header& h, uint32_t copied) { node_->ChargeCopy(h, copied, /*rx=*/false); });
  if (!s.ok()) Fail(std::move(s));
}

}  // namespace vsock
}  // namespace vrpc
