// Fuzz target: DeviceQueue::Pop over descriptor tables and avail rings built
// from the input, in guest memory with a hole and two adjacent regions.
//
// Input layout (missing bytes read as zero):
//   [0]      queue size = 1 << (b % 9)            (1..256)
//   [1]      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 complete each round's
//            chains in one batch at its end (so heads stay in flight)
//   [2..3]   next avail index (SET_VRING_BASE)
//   [4..5]   avail.idx for round 1
//   [6..7]   avail.idx increment for round 2
//   then     size descriptors (16 B each; addr/len/next remapped, see Remap*)
//   then     size avail ring entries (2 B each)
//   rest     copied to region B (indirect tables and payload)
//
// For every Pop the target checks, against a small reference model of the
// walk rules evaluated on the same (static) memory:
//   - same verdict (chain or error code) and the same chain;
//   - the queue read exactly the guest ranges the model says, each once, in
//     the same order (avail.idx, the avail entry, each descriptor visited);
//   - bounded work: at most 2 * size descriptor reads per Pop;
//   - the ReadOnceChecker finds no byte read twice while popping the chain
//     and reading its header and payload, whenever the guest did not alias
//     those objects onto each other;
//   - once broken, no API touches guest memory.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/base/logging.h"
#include "transport_vsock/virtqueue/chain.h"
#include "transport_vsock/virtqueue/device_queue.h"
#include "transport_vsock/virtqueue/guest_memory.h"
#include "transport_vsock/virtqueue/ring.h"
#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"
#include "transport_vsock/virtqueue/testing/raw_ring.h"
#include "transport_vsock/virtqueue/testing/read_once_checker.h"

namespace vrpc {
namespace virtqueue {
namespace {

using testing::Access;
using testing::FakeGuestMemory;
using testing::RawRing;
using testing::ReadOnceChecker;
using testing::RingLayout;

// Small regions so each input resets quickly: A [0, 64K) holds the rings
// (and data above 0x8000), hole [64K, 128K), B [128K, 192K), C [192K, 256K).
constexpr uint64_t kA = 0x00000;
constexpr uint64_t kRegionSize = 0x10000;
constexpr uint64_t kB = 0x20000;
constexpr uint64_t kC = 0x30000;

FakeGuestMemory& Memory() {
  static FakeGuestMemory* fake =
      new FakeGuestMemory({{kA, kRegionSize}, {kB, kRegionSize}, {kC, kRegionSize}});
  return *fake;
}

class Input {
 public:
  explicit Input(absl::Span<const uint8_t> data) : data_(data) {}
  uint8_t U8() { return pos_ < data_.size() ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return uint32_t{U16()} | (uint32_t{U16()} << 16); }
  uint64_t U64() { return uint64_t{U32()} | (uint64_t{U32()} << 32); }
  absl::Span<const uint8_t> Rest() { return data_.subspan(std::min(pos_, data_.size())); }

 private:
  absl::Span<const uint8_t> data_;
  size_t pos_ = 0;
};

// Raw values mostly land near interesting places; top bits keep them raw.
uint64_t RemapAddr(uint64_t raw) {
  if ((raw >> 63) != 0) return raw;
  static constexpr uint64_t kBases[8] = {
      kA + 0x8000,        kA + kRegionSize - 0x40, kA + kRegionSize,  kB,
      kC - 0x40,          kC + kRegionSize - 0x40, kB + 0x100,        ~uint64_t{0} - 0xfff};
  return kBases[(raw >> 60) & 7] + (raw & 0xfff);
}
uint32_t RemapLen(uint32_t raw) { return (raw >> 31) != 0 ? raw : raw & 0x3ff; }
uint16_t RemapIndex(uint16_t raw, uint32_t size) {
  return (raw >> 15) != 0 ? raw : static_cast<uint16_t>(raw % (2 * size));
}

struct Read {
  uint64_t addr;
  uint64_t len;
  friend bool operator==(const Read& a, const Read& b) {
    return a.addr == b.addr && a.len == b.len;
  }
};

// What one Pop should do, computed independently from the same memory.
struct Expected {
  std::vector<Read> reads;
  bool ok = false;
  absl::StatusCode code = absl::StatusCode::kOk;
  std::vector<ChainDescriptor> descriptors;
};

class Model {
 public:
  Model(const RingLayout& layout, bool indirect, uint16_t next_avail)
      : layout_(layout), indirect_(indirect), last_avail_(next_avail), shadow_(next_avail) {}

  Expected Pop() {
    Expected e;
    const FakeGuestMemory& m = Memory();
    if (shadow_ == last_avail_) {
      e.reads.push_back({layout_.avail_addr + kAvailIdxOffset, 2});
      const uint16_t idx = Load16(layout_.avail_addr + kAvailIdxOffset);
      if (static_cast<uint16_t>(idx - last_avail_) > layout_.size) {
        return Fail(e, absl::StatusCode::kInvalidArgument);
      }
      shadow_ = idx;
      if (idx == last_avail_) {
        e.ok = true;
        return e;
      }
    }
    const uint64_t slot = layout_.avail_addr + kAvailRingOffset +
                          2 * static_cast<uint64_t>(last_avail_ & (layout_.size - 1));
    e.reads.push_back({slot, 2});
    const uint16_t head = Load16(slot);
    if (head >= layout_.size || in_flight_[head]) {
      return Fail(e, absl::StatusCode::kInvalidArgument);
    }
    uint64_t table = layout_.desc_addr;
    uint32_t table_size = layout_.size;
    bool in_indirect = false;
    std::vector<bool> seen(layout_.size, false);
    uint64_t total = 0;
    bool seen_writable = false;
    uint32_t index = head;
    for (;;) {
      if (seen[index]) return Fail(e, absl::StatusCode::kInvalidArgument);
      seen[index] = true;
      e.reads.push_back({table + 16 * uint64_t{index}, 16});
      uint8_t raw[16];
      m.Read(table + 16 * uint64_t{index}, absl::MakeSpan(raw));
      const Descriptor d = ReadDescriptor(raw);
      if (d.flags & kDescFlagIndirect) {
        if (!indirect_ || in_indirect || (d.flags & kDescFlagNext) || d.len == 0 ||
            d.len % 16 != 0 || d.len / 16 > layout_.size) {
          return Fail(e, absl::StatusCode::kInvalidArgument);
        }
        if (!m.memory().Translate(d.addr, d.len).ok()) {
          return Fail(e, absl::StatusCode::kOutOfRange);
        }
        table = d.addr;
        table_size = d.len / 16;
        in_indirect = true;
        seen.assign(layout_.size, false);
        index = 0;
        continue;
      }
      const bool writable = (d.flags & kDescFlagWrite) != 0;
      total += d.len;
      if ((!writable && seen_writable) || total > 0xffffffffu) {
        return Fail(e, absl::StatusCode::kInvalidArgument);
      }
      if (d.len > 0 && !m.memory().IsMapped(d.addr, d.len)) {
        return Fail(e, absl::StatusCode::kOutOfRange);
      }
      seen_writable = seen_writable || writable;
      e.descriptors.push_back({d.addr, d.len, writable});
      if (!(d.flags & kDescFlagNext)) break;
      if (d.next >= table_size) return Fail(e, absl::StatusCode::kInvalidArgument);
      index = d.next;
    }
    ++last_avail_;
    in_flight_[head] = true;
    e.ok = true;
    return e;
  }

  void Complete(uint16_t head) { in_flight_[head] = false; }
  // Forgets the cached avail.idx, as the queue's EnableNotifications does.
  void Restart(uint16_t last_avail) { last_avail_ = shadow_ = last_avail; }

 private:
  static Expected Fail(Expected& e, absl::StatusCode code) {
    e.ok = false;
    e.code = code;
    return std::move(e);
  }
  uint16_t Load16(uint64_t addr) const {
    uint8_t b[2];
    Memory().Read(addr, absl::MakeSpan(b));
    return static_cast<uint16_t>(b[0] | (b[1] << 8));
  }

  const RingLayout layout_;
  const bool indirect_;
  uint16_t last_avail_;
  uint16_t shadow_;
  std::vector<bool> in_flight_ = std::vector<bool>(256, false);
};

// Records reads for comparison with the model, and feeds the checker.
class Recorder : public GuestMemoryObserver {
 public:
  void OnRead(uint64_t addr, uint64_t len) override {
    reads.push_back({addr, len});
    ++accesses;
    checker.OnRead(addr, len);
  }
  void OnWrite(uint64_t addr, uint64_t len) override {
    written += len;
    ++accesses;
    checker.OnWrite(addr, len);
  }
  std::vector<Read> reads;
  uint64_t written = 0;
  uint64_t accesses = 0;
  ReadOnceChecker checker;
};

bool Disjoint(std::vector<Read> objects) {
  std::sort(objects.begin(), objects.end(),
            [](const Read& a, const Read& b) { return a.addr < b.addr; });
  for (size_t i = 1; i < objects.size(); ++i) {
    if (objects[i - 1].addr + objects[i - 1].len > objects[i].addr) return false;
  }
  return true;
}

// Adds the guest ranges that bytes [0, len) of |descs| occupy.
void AddPayloadObjects(absl::Span<const ChainDescriptor> descs, uint64_t len,
                       std::vector<Read>* objects) {
  for (const ChainDescriptor& d : descs) {
    if (len == 0) break;
    const uint64_t n = std::min<uint64_t>(len, d.len);
    if (n > 0) objects->push_back({d.addr, n});
    len -= n;
  }
}

// Reads the header and some payload, writes a reply; returns the completion.
UsedElement ProcessChain(DeviceQueue& q, const Chain& c, Recorder& rec,
                         std::vector<Read> objects) {
  const uint64_t header = std::min<uint64_t>(44, c.readable_bytes());
  const uint64_t payload = std::min<uint64_t>(c.readable_bytes() - header, 4096);
  static uint8_t buf[4096 + 44];
  const size_t reads_before = rec.reads.size();
  VRPC_CHECK(q.ReadChain(c, 0, absl::MakeSpan(buf, header)).ok());
  VRPC_CHECK(q.ReadChain(c, header, absl::MakeSpan(buf + header, payload)).ok());
  uint64_t bytes = 0;
  for (size_t i = reads_before; i < rec.reads.size(); ++i) bytes += rec.reads[i].len;
  VRPC_CHECK(bytes == header + payload) << "payload bytes read " << bytes;
  AddPayloadObjects(c.readable(), header + payload, &objects);
  if (Disjoint(objects)) VRPC_CHECK(rec.checker.scope_ok()) << rec.checker.Report();
  // A read past the chain is refused without touching anything.
  const uint64_t accesses = rec.accesses;
  VRPC_CHECK(q.ReadChain(c, c.readable_bytes(), absl::MakeSpan(buf, 1)).code() ==
             absl::StatusCode::kOutOfRange);
  VRPC_CHECK(rec.accesses == accesses);

  const uint32_t reply = std::min<uint32_t>(c.writable_bytes(), 256);
  const uint64_t written = rec.written;
  VRPC_CHECK(q.WriteChain(c, 0, absl::MakeSpan(buf, reply)).ok());
  VRPC_CHECK(rec.written - written == reply);
  return UsedElement{c.head(), reply};
}

void ExpectInert(DeviceQueue& q, Recorder& rec) {
  const uint64_t before = rec.accesses;
  const Chain c(0, {{kB, 8, false}, {kB + 8, 8, true}}, false);
  uint8_t b[4];
  VRPC_CHECK(q.Pop().status().code() == absl::StatusCode::kFailedPrecondition);
  VRPC_CHECK(q.PushUsed(0, 0).code() == absl::StatusCode::kFailedPrecondition);
  VRPC_CHECK(!q.ShouldNotify());
  VRPC_CHECK(!q.EnableNotifications().ok());
  VRPC_CHECK(!q.DisableNotifications().ok());
  VRPC_CHECK(!q.ReadChain(c, 0, absl::MakeSpan(b)).ok());
  VRPC_CHECK(!q.WriteChain(c, 0, b).ok());
  VRPC_CHECK(rec.accesses == before) << "broken queue touched guest memory";
}

// Pops until empty or broken; returns false once broken. Completes each chain
// at once, or all of them at the end when |batch|.
bool DrainRound(DeviceQueue& q, Model& model, Recorder& rec, uint32_t size, bool batch) {
  std::vector<UsedElement> done;
  for (uint32_t pops = 0;; ++pops) {
    VRPC_CHECK(pops <= size) << "more pops than the queue size in one round";
    rec.reads.clear();
    rec.checker.BeginScope();
    const uint64_t descs_before = q.stats().descriptors_read;
    const Expected want = model.Pop();
    absl::StatusOr<std::optional<Chain>> got = q.Pop();
    VRPC_CHECK(q.stats().descriptors_read - descs_before <= 2 * uint64_t{size});
    VRPC_CHECK(rec.reads == want.reads) << "reads differ from the model";
    if (!got.ok()) {
      VRPC_CHECK(!want.ok && got.status().code() == want.code) << got.status();
      VRPC_CHECK(q.broken());
      ExpectInert(q, rec);
      return false;
    }
    VRPC_CHECK(want.ok) << "model rejects what the queue accepted";
    if (!got->has_value()) {
      VRPC_CHECK(want.descriptors.empty());
      VRPC_CHECK(q.PushUsedBatch(done).ok());
      for (const UsedElement& e : done) model.Complete(e.head);
      VRPC_CHECK(q.in_flight() == 0);
      return true;
    }
    const Chain& c = **got;
    VRPC_CHECK(std::equal(c.descriptors().begin(), c.descriptors().end(),
                          want.descriptors.begin(), want.descriptors.end()));
    const UsedElement used = ProcessChain(q, c, rec, want.reads);
    if (batch) {
      done.push_back(used);
    } else {
      VRPC_CHECK(q.PushUsed(used.head, used.len).ok());
      model.Complete(used.head);
    }
  }
}

void RunOne(absl::Span<const uint8_t> data) {
  Input in(data);
  const uint32_t size = 1u << (in.U8() % 9);
  const uint8_t features = in.U8();
  const uint16_t next_avail = in.U16();
  const uint16_t avail_idx = in.U16();
  const uint16_t avail_step = in.U16();
  const bool event_idx = (features & 1) != 0;
  const bool indirect = (features & 2) != 0;
  const bool batch = (features & 4) != 0;

  FakeGuestMemory& fake = Memory();
  fake.Fill(0);
  const RingLayout layout = RingLayout::Packed(size, kA, event_idx);
  RawRing ring(&fake, layout);
  for (uint32_t i = 0; i < size; ++i) {
    const uint64_t addr = RemapAddr(in.U64());
    const uint32_t len = RemapLen(in.U32());
    const uint16_t flags = in.U16();
    const uint16_t next = RemapIndex(in.U16(), size);
    ring.SetDesc(i, addr, len, flags, next);
  }
  for (uint32_t i = 0; i < size; ++i) ring.SetAvailEntry(i, RemapIndex(in.U16(), size));
  const absl::Span<const uint8_t> rest = in.Rest();
  fake.Write(kB, rest.subspan(0, std::min<size_t>(rest.size(), kRegionSize)));
  ring.SetAvailIdx(avail_idx);

  Recorder rec;
  DeviceQueueConfig config = layout.DeviceConfig(next_avail);
  config.indirect_desc = indirect;
  config.next_used = 0;
  absl::StatusOr<std::unique_ptr<DeviceQueue>> q =
      DeviceQueue::Create(fake.memory().WithObserver(&rec), config);
  VRPC_CHECK(q.ok()) << q.status();
  Model model(layout, indirect, next_avail);

  if (!DrainRound(**q, model, rec, size, batch)) return;
  rec.checker.BeginScope();
  (void)(*q)->ShouldNotify();
  VRPC_CHECK((*q)->EnableNotifications().ok());
  // Round 2: the driver moves avail.idx again.
  ring.SetAvailIdx(static_cast<uint16_t>(avail_idx + avail_step));
  model.Restart((*q)->last_avail_idx());
  DrainRound(**q, model, rec, size, batch);
}

}  // namespace
}  // namespace virtqueue
}  // namespace vrpc

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Every rejected input latches a queue; don't log each one.
  vrpc::SetMinLogSeverity(vrpc::LogSeverity::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vrpc::virtqueue::RunOne(absl::MakeConstSpan(data, size));
  return 0;
}
