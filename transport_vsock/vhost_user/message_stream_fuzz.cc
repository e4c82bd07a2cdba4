// Fuzz target: a hostile vhost-user frontend. The input is a sequence of
// steps; most are messages (request, flags, payload, size field, descriptor
// count and kinds) written into a socketpair, the rest hang up or reconnect.
// The backend (with a RecordingDevice that holds tables and descriptors like
// a real device) handles each message as it arrives; a session that ends in
// an error is disconnected and a new frontend attached, as a real caller
// would.
//
// Invariants:
//   - nothing crashes (ASan/UBSan in --config=fuzz);
//   - a started ring is always known to the device, a stopped one is not;
//   - bytes mapped stay below a bound while running, and are all unmapped,
//     and the process has exactly as many descriptors as before, once the
//     harness is torn down.
//
// Input format (see README.md; corpus seeds are written to it):
//   step   := op:u8 ...
//   op%16 == 15: reconnect;  op%16 == 14: half-close (EOF) then reconnect
//   otherwise a message:
//     req:u8      <0xe0: kRequestIds[req % N]; else a raw u32 follows
//     flags:u8    0: 0x1, 1: 0x9, 2: 0x5, 3: 0x0, else raw u8
//     mode:u8     even: raw payload (len:u16 % 4200, then bytes);
//                 odd: payload built from the input for |req| (see Build*)
//     lie:u8      <240: size field = payload size; else size + (lie - 248)
//     fdsel:u8    0..3: that many fds; 250..255: 30..40 fds; else the
//                 "natural" count for the request
//     kinds:u8    2 bits per fd: memfd (guest RAM), eventfd, /dev/null, memfd
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "core/base/logging.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/backend.h"
#include "transport_vsock/vhost_user/memory.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/backend_harness.h"
#include "transport_vsock/vhost_user/testing/resources.h"

namespace vrpc {
namespace vhost_user {
namespace {

using testing::BackendHarness;
using testing::FakeGuestRam;

constexpr uint64_t kRamSize = 2 * 1024 * 1024;
constexpr uint64_t kMaxMemory = 4 * 1024 * 1024;
constexpr uint32_t kQueues = 3;

constexpr uint32_t kRequestIds[] = {
    kGetFeatures,    kSetFeatures,        kSetOwner,
    kResetOwner,     kSetMemTable,        kSetVringNum,
    kSetVringAddr,   kSetVringBase,       kGetVringBase,
    kSetVringKick,   kSetVringCall,       kSetVringErr,
    kGetProtocolFeatures, kSetProtocolFeatures, kGetQueueNum,
    kSetVringEnable, kGetConfig,          kSetConfig,
    kGetMaxMemSlots, kAddMemReg,          kRemMemReg,
    kSetLogBase,     kIotlbMsg,           kResetDevice,
    kNone,           45,
};
constexpr size_t kNumRequestIds = sizeof(kRequestIds) / sizeof(kRequestIds[0]);

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return U16() | (static_cast<uint32_t>(U16()) << 16); }
  uint64_t U64() { return U32() | (static_cast<uint64_t>(U32()) << 32); }
  std::vector<uint8_t> Bytes(size_t n) {
    std::vector<uint8_t> out;
    while (n-- > 0 && !empty()) out.push_back(U8());
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A ring index: mostly valid, sometimes each kind of invalid.
uint32_t RingIndex(Input& in) {
  const uint8_t b = in.U8();
  if (b < 200) return b % kQueues;
  const uint32_t specials[] = {kQueues, kQueues + 1, 0x10000, 0x10001,
                               0x100,   0xff,        UINT32_MAX, in.U32()};
  return specials[b % 8];
}

uint32_t RingNum(Input& in) {
  const uint8_t b = in.U8();
  if (b < 200) return 1u << (b % 16);
  const uint32_t specials[] = {0, 3, 100, 65536, 0x80000000u, UINT32_MAX, 1u << 15, in.U32()};
  return specials[b % 8];
}

// A 4 KiB-page-granular value below a few MiB, or raw.
uint64_t Address(Input& in) {
  const uint8_t b = in.U8();
  if (b < 224) return static_cast<uint64_t>(in.U8()) * 0x1000;
  return in.U64();
}

MemoryRegionDesc Region(Input& in) {
  MemoryRegionDesc r;
  const uint64_t offset = Address(in);
  r.guest_addr = Address(in);
  r.size = Address(in);
  r.user_addr = (in.U8() & 1) ? FakeGuestRam::UserAddr(offset) : in.U64();
  r.mmap_offset = offset;
  return r;
}

VringAddress RingAddr(Input& in) {
  VringAddress a = BackendHarness::RingAddress(in.U8() % kQueues);
  a.index = RingIndex(in);
  const uint8_t how = in.U8();
  if (how & 1) a.desc_user_addr = FakeGuestRam::UserAddr(Address(in));
  if (how & 2) a.avail_user_addr = FakeGuestRam::UserAddr(Address(in));
  if (how & 4) a.used_user_addr = FakeGuestRam::UserAddr(Address(in));
  if (how & 8) a.flags = in.U8();
  return a;
}

std::vector<uint8_t> BuildPayload(uint32_t request, Input& in) {
  switch (request) {
    case kSetFeatures:
      return EncodeU64((in.U8() & 1) ? testing::kQemuAckedFeatures : in.U64());
    case kSetProtocolFeatures:
      return EncodeU64((in.U8() & 1) ? 0x8209 : in.U64());
    case kSetVringNum:
    case kSetVringBase:
    case kGetVringBase:
    case kSetVringEnable: {
      VringState s;
      s.index = RingIndex(in);
      s.num = request == kSetVringNum ? RingNum(in)
                                      : (in.U8() < 128 ? in.U8() : in.U32());
      return EncodeVringState(s);
    }
    case kSetVringAddr:
      return EncodeVringAddress(RingAddr(in));
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr: {
      uint64_t v = RingIndex(in);
      const uint8_t b = in.U8();
      if (b & 1) v |= kVringNoFdMask;
      if (b > 250) v |= in.U64();
      return EncodeU64(v);
    }
    case kSetMemTable: {
      std::vector<MemoryRegionDesc> regions(in.U8() % 10);
      for (MemoryRegionDesc& r : regions) r = Region(in);
      return EncodeMemTable(regions);
    }
    case kAddMemReg:
    case kRemMemReg:
      return EncodeSingleRegion(Region(in));
    case kGetConfig:
    case kSetConfig: {
      const uint32_t offset = in.U8() < 240 ? in.U8() % 16 : in.U32();
      return EncodeConfig(offset, in.U8() % 3, std::vector<uint8_t>(in.U8() % 24));
    }
    default:
      return in.Bytes(in.U8());
  }
}

// How many descriptors a well-behaved frontend would attach.
size_t NaturalFdCount(uint32_t request, const std::vector<uint8_t>& payload) {
  switch (request) {
    case kSetMemTable: {
      if (payload.size() < 4) return 0;
      uint32_t n;
      std::memcpy(&n, payload.data(), 4);
      return n <= kMaxMemTableRegions ? n : 1;
    }
    case kAddMemReg:
      return 1;
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr: {
      if (payload.size() < 8) return 1;
      uint64_t v;
      std::memcpy(&v, payload.data(), 8);
      return (v & kVringNoFdMask) ? 0 : 1;
    }
    default:
      return 0;
  }
}

class Fuzzer {
 public:
  explicit Fuzzer(Input& in) : in_(in) {
    BackendHarness::Options options;
    options.num_queues = kQueues;
    options.ram_size = kRamSize;
    options.backend.io_timeout = absl::ZeroDuration();  // never wait
    options.backend.max_memory_bytes = kMaxMemory;
    h_ = std::make_unique<BackendHarness>(options);
    dev_null_ = UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    VRPC_CHECK(dev_null_.valid());
  }

  void Run() {
    int steps = 0;
    while (!in_.empty() && ++steps < 512) {
      Step();
      CheckInvariants();
    }
    Trace("end");
  }

 private:
  void Step() {
    const uint8_t op = in_.U8();
    if (op % 16 == 15) {
      Reconnect("reconnect");
      return;
    }
    if (op % 16 == 14) {
      h_->frontend().ShutdownWrite();
      (void)h_->Pump();
      Reconnect("half-close");
      return;
    }
    SendMessage();
    const absl::Status s = h_->Pump();
    if (!s.ok()) Reconnect(s.ToString());
    h_->frontend().Drain();
  }

  void Reconnect(const std::string& why) {
    Trace(why);
    h_->Reconnect();
    h_->device().events.clear();
  }

  // VRPC_FUZZ_TRACE=1 prints each session's device calls (to check seeds).
  void Trace(const std::string& why) {
    static const bool enabled = std::getenv("VRPC_FUZZ_TRACE") != nullptr;
    if (!enabled) return;
    std::fprintf(stderr, "session end (%s): %s\n", why.c_str(),
                 h_->device().Events().c_str());
  }

  void SendMessage() {
    const uint8_t req = in_.U8();
    const uint32_t request = req < 0xe0 ? kRequestIds[req % kNumRequestIds] : in_.U32();
    const uint8_t f = in_.U8();
    const uint32_t flags = f == 0 ? 0x1 : f == 1 ? 0x9 : f == 2 ? 0x5 : f == 3 ? 0x0 : f;
    const uint8_t mode = in_.U8();
    std::vector<uint8_t> payload = (mode % 2 == 0)
                                       ? in_.Bytes(in_.U16() % 4200)
                                       : BuildPayload(request, in_);
    const uint8_t lie = in_.U8();
    uint32_t size = static_cast<uint32_t>(payload.size());
    if (lie >= 240) size += static_cast<uint32_t>(static_cast<int>(lie) - 248);
    const uint8_t fdsel = in_.U8();
    size_t nfds = NaturalFdCount(request, payload);
    if (fdsel < 4) nfds = fdsel;
    if (fdsel >= 250) nfds = 30 + (fdsel - 250u) * 2;
    const uint8_t kinds = in_.U8();
    std::vector<int> fds;
    for (size_t i = 0; i < nfds; ++i) {
      switch ((kinds >> ((i % 4) * 2)) & 3) {
        case 1: fds.push_back(h_->spare_fd(static_cast<uint32_t>(i % kQueues))); break;
        case 2: fds.push_back(dev_null_.get()); break;
        default: fds.push_back(h_->ram().fd()); break;
      }
    }
    MessageHeader header{request, flags, size};
    (void)h_->frontend().SendRaw(EncodeMessage(header, payload), fds);
  }

  void CheckInvariants() {
    const testing::RecordingDevice& dev = h_->device();
    for (uint32_t i = 0; i < kQueues; ++i) {
      VRPC_CHECK(h_->backend().ring_started(i) == (dev.running.count(i) == 1))
          << "ring " << i << " state disagrees with the device";
    }
    // The current table plus one per started ring may be alive, each within
    // the cap (plus page rounding of up to 32 regions).
    const uint64_t bound = (kQueues + 2) * (kMaxMemory + 32 * 2 * 4096);
    VRPC_CHECK(MemoryTable::LiveMappedBytes() <= bound)
        << "mapped " << MemoryTable::LiveMappedBytes() << " bytes";
  }

  Input& in_;
  std::unique_ptr<BackendHarness> h_;
  UniqueFd dev_null_;
};

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vrpc::SetMinLogSeverity(vrpc::LogSeverity::kFatal);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vrpc::vhost_user::MemoryTable;
  const size_t fds_before = vrpc::vhost_user::testing::CountOpenFds();
  const uint64_t bytes_before = MemoryTable::LiveMappedBytes();
  {
    vrpc::vhost_user::Input in(data, size);
    vrpc::vhost_user::Fuzzer fuzzer(in);
    fuzzer.Run();
  }
  VRPC_CHECK(vrpc::vhost_user::testing::CountOpenFds() == fds_before)
      << "descriptor leak: " << vrpc::vhost_user::testing::CountOpenFds()
      << " open, " << fds_before << " before";
  VRPC_CHECK(MemoryTable::LiveMappedBytes() == bytes_before) << "mapping leak";
  return 0;
}
