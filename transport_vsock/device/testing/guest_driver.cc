#include "transport_vsock/device/testing/guest_driver.h"

#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/virtqueue/ring.h"

namespace vrpc {
namespace vsock {
namespace testing {
namespace {

using vhost_user::testing::BackendHarness;
using vhost_user::testing::kQemuRingSize;

constexpr uint64_t kAvailOffset = 0x800;
constexpr uint64_t kUsedOffset = 0x1000;
constexpr uint32_t kEventSize = 4;  // struct virtio_vsock_event { le32 id; }

}  // namespace

Header GuestHeader(Op op, uint32_t src_port, uint32_t dst_port, uint32_t buf_alloc) {
  Header h;
  h.src_cid = kDriverGuestCid;
  h.dst_cid = kCidHost;
  h.src_port = src_port;
  h.dst_port = dst_port;
  h.type = static_cast<uint16_t>(SocketType::kStream);
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = buf_alloc;
  return h;
}

absl::Status StartVsockSession(BackendHarness& h, uint32_t rings) {
  if (!h.QemuInit()) return absl::InternalError("QEMU start-up sequence failed");
  if (rings > 2) {
    h.frontend().SendU64(vhost_user::kSetVringCall, 2, vhost_user::kVersion, {h.call_fd(2)});
    h.frontend().SendU64(vhost_user::kSetVringErr, 2, vhost_user::kVersion, {h.err_fd(2)});
  }
  h.SendMemTable(h.QemuRegions(), vhost_user::kVersion);
  h.QemuStartRings(rings);
  for (uint32_t i = 0; i < rings; ++i) h.frontend().SendState(vhost_user::kSetVringEnable, i, 1);
  if (absl::Status s = h.Pump(); !s.ok()) return s;
  for (uint32_t i = 0; i < rings; ++i) {
    if (!h.backend().ring_enabled(i)) return absl::InternalError(absl::StrCat("ring ", i, " off"));
  }
  return absl::OkStatus();
}

// Guest address == memfd offset in both regions of the harness's layout.
GuestDriver::GuestDriver(BackendHarness& harness) : harness_(harness) {
  vhost_user::testing::FakeGuestRam& ram = harness_.ram();
  std::vector<virtqueue::MemoryRegion> regions = {
      {0, 0xa0000, ram.data()},
      {0xc0000, ram.size() - 0xc0000, ram.data() + 0xc0000},
  };
  absl::StatusOr<virtqueue::GuestMemory> memory =
      virtqueue::GuestMemory::Create(std::move(regions), nullptr);
  VRPC_CHECK(memory.ok()) << memory.status();
  memory_ = *std::move(memory);
}

void GuestDriver::Init(uint32_t rings) {
  VRPC_CHECK(rings >= 1 && rings <= 3) << rings;
  queues_.clear();
  for (uint32_t i = 0; i < rings; ++i) {
    virtqueue::DriverQueueConfig config;
    config.size = kQemuRingSize;
    config.desc_addr = BackendHarness::RingGuestAddr(i);
    config.avail_addr = config.desc_addr + kAvailOffset;
    config.used_addr = config.desc_addr + kUsedOffset;
    config.event_idx = true;
    absl::StatusOr<std::unique_ptr<virtqueue::DriverQueue>> q =
        virtqueue::DriverQueue::Create(memory_, config);
    VRPC_CHECK(q.ok()) << q.status();
    queues_.push_back(*std::move(q));
  }
}

void GuestDriver::Kick(uint32_t ring) {
  const uint64_t one = 1;
  VRPC_CHECK(::write(harness_.kick_fd(ring), &one, sizeof(one)) == sizeof(one));
}

absl::Status GuestDriver::Publish(uint32_t ring) {
  absl::StatusOr<bool> kick = queue(ring).PublishAvail();
  if (!kick.ok()) return kick.status();
  if (*kick && auto_kick_) Kick(ring);
  return absl::OkStatus();
}

uint64_t GuestDriver::Allocate(uint32_t len) {
  const uint64_t addr = next_free_;
  next_free_ = (addr + len + 64 + 15) & ~uint64_t{15};
  VRPC_CHECK(next_free_ <= harness_.ram().size()) << "guest RAM exhausted";
  return addr;
}

uint8_t* GuestDriver::At(uint64_t guest_addr) const {
  VRPC_CHECK(guest_addr >= 0xc0000 && guest_addr < harness_.ram().size());
  return harness_.ram().data() + guest_addr;
}

absl::Status GuestDriver::PostRx(size_t count, uint32_t size) {
  for (size_t i = 0; i < count; ++i) {
    const virtqueue::DriverBuffer b{Allocate(size), size};
    absl::StatusOr<uint16_t> head = queue(kRxRing).Add({}, {b}, buffers_.size());
    if (!head.ok()) return head.status();
    buffers_.push_back({b.addr, b.len});
  }
  return Publish(kRxRing);
}

absl::StatusOr<std::vector<virtqueue::UsedBuffer>> GuestDriver::Harvest(uint32_t ring) {
  std::vector<virtqueue::UsedBuffer> out;
  for (;;) {
    absl::StatusOr<std::optional<virtqueue::UsedBuffer>> used = queue(ring).PopUsed();
    if (!used.ok()) return used.status();
    if (!used->has_value()) return out;
    out.push_back(**used);
  }
}

absl::StatusOr<std::vector<RxPacket>> GuestDriver::TakeRx() {
  absl::StatusOr<std::vector<virtqueue::UsedBuffer>> used = Harvest(kRxRing);
  if (!used.ok()) return used.status();
  std::vector<RxPacket> out;
  for (const virtqueue::UsedBuffer& u : *used) {
    const Buffer& b = buffers_.at(u.token);
    if (u.len < kHeaderSize) return absl::DataLossError(absl::StrCat("rx used len ", u.len));
    const uint8_t* data = At(b.addr);
    RxPacket p;
    p.header = *DecodeHeader(absl::MakeConstSpan(data, kHeaderSize));
    p.payload.assign(reinterpret_cast<const char*>(data) + kHeaderSize, u.len - kHeaderSize);
    if (p.header.len != p.payload.size()) {
      return absl::DataLossError(absl::StrCat("rx header len ", p.header.len, " but ",
                                              p.payload.size(), " bytes used"));
    }
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<uint16_t> GuestDriver::Send(Header header, absl::string_view payload,
                                           const std::vector<uint32_t>& split) {
  header.len = static_cast<uint32_t>(payload.size());
  const std::array<uint8_t, kHeaderSize> raw = EncodeHeader(header);
  std::string bytes(reinterpret_cast<const char*>(raw.data()), raw.size());
  bytes.append(payload.data(), payload.size());
  if (split.empty() && !payload.empty()) return SendBytes(bytes, {kHeaderSize});
  return SendBytes(bytes, split);
}

absl::StatusOr<uint16_t> GuestDriver::SendBytes(absl::string_view bytes,
                                                const std::vector<uint32_t>& split) {
  std::vector<virtqueue::DriverBuffer> pieces;
  size_t offset = 0;
  auto add = [&](size_t len) {
    const uint64_t addr = Allocate(static_cast<uint32_t>(len));
    std::memcpy(At(addr), bytes.data() + offset, len);
    pieces.push_back({addr, static_cast<uint32_t>(len)});
    offset += len;
  };
  for (uint32_t len : split) {
    VRPC_CHECK(len > 0 && offset + len <= bytes.size()) << "bad split";
    add(len);
  }
  if (offset < bytes.size()) add(bytes.size() - offset);
  last_tx_ = pieces;
  absl::StatusOr<uint16_t> head = queue(kTxRing).Add(pieces, {}, 0);
  if (!head.ok()) return head.status();
  if (absl::Status s = Publish(kTxRing); !s.ok()) return s;
  return *head;
}

absl::StatusOr<std::vector<uint16_t>> GuestDriver::TakeTxUsed() {
  absl::StatusOr<std::vector<virtqueue::UsedBuffer>> used = Harvest(kTxRing);
  if (!used.ok()) return used.status();
  std::vector<uint16_t> heads;
  for (const virtqueue::UsedBuffer& u : *used) heads.push_back(u.head);
  return heads;
}

absl::Status GuestDriver::PostEvents(size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const virtqueue::DriverBuffer b{Allocate(kEventSize), kEventSize};
    std::memset(At(b.addr), 0xff, kEventSize);
    absl::StatusOr<uint16_t> head = queue(kEventRing).Add({}, {b}, buffers_.size());
    if (!head.ok()) return head.status();
    buffers_.push_back({b.addr, b.len});
  }
  return Publish(kEventRing);
}

absl::StatusOr<std::vector<uint32_t>> GuestDriver::TakeEvents() {
  absl::StatusOr<std::vector<virtqueue::UsedBuffer>> used = Harvest(kEventRing);
  if (!used.ok()) return used.status();
  std::vector<uint32_t> ids;
  for (const virtqueue::UsedBuffer& u : *used) {
    if (u.len != kEventSize) return absl::DataLossError(absl::StrCat("event len ", u.len));
    const uint8_t* p = At(buffers_.at(u.token).addr);
    ids.push_back(uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
                  uint32_t{p[3]} << 24);
  }
  return ids;
}

void GuestDriver::RawSetDesc(uint32_t ring, uint16_t index, uint64_t addr, uint32_t len,
                             uint16_t flags, uint16_t next) {
  VRPC_CHECK(index < kQemuRingSize);
  uint8_t* d = At(BackendHarness::RingGuestAddr(ring) + virtqueue::kDescSize * index);
  std::memcpy(d, &addr, 8);  // little-endian host (x86-64, aarch64)
  std::memcpy(d + 8, &len, 4);
  std::memcpy(d + 12, &flags, 2);
  std::memcpy(d + 14, &next, 2);
}

void GuestDriver::RawPushAvail(uint32_t ring, uint16_t head) {
  const uint16_t idx = RawAvailIdx(ring);
  uint8_t* avail = At(BackendHarness::RingGuestAddr(ring) + kAvailOffset);
  std::memcpy(avail + 4 + 2 * (idx % kQemuRingSize), &head, 2);
  RawSetAvailIdx(ring, static_cast<uint16_t>(idx + 1));
}

void GuestDriver::RawSetAvailIdx(uint32_t ring, uint16_t idx) {
  std::memcpy(At(BackendHarness::RingGuestAddr(ring) + kAvailOffset + 2), &idx, 2);
}

uint16_t GuestDriver::RawAvailIdx(uint32_t ring) const {
  uint16_t idx;
  std::memcpy(&idx, At(BackendHarness::RingGuestAddr(ring) + kAvailOffset + 2), 2);
  return idx;
}

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc
