#include "transport_vsock/vhost_user/message.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vhost_user {
namespace {

// How CheckRequestSize judges a request's payload size.
enum class SizeRule : uint8_t {
  kUnknown,   // layout not known here
  kExact,     // size == a
  kRange,     // a <= size <= b (the parser checks the exact size)
};

struct RequestInfo {
  const char* name;
  SizeRule rule;
  uint32_t min;
  uint32_t max;
  bool has_reply;
};

constexpr uint32_t kU64 = 8;
constexpr uint32_t kState = static_cast<uint32_t>(kVringStateSize);

// Indexed by request id; every access is bounds-checked (RequestInfoFor).
constexpr RequestInfo kRequests[] = {
    {"NONE", SizeRule::kUnknown, 0, 0, false},                     // 0
    {"GET_FEATURES", SizeRule::kExact, 0, 0, true},                // 1
    {"SET_FEATURES", SizeRule::kExact, kU64, kU64, false},         // 2
    {"SET_OWNER", SizeRule::kExact, 0, 0, false},                  // 3
    {"RESET_OWNER", SizeRule::kExact, 0, 0, false},                // 4
    {"SET_MEM_TABLE", SizeRule::kRange,                            // 5
     kMemTableHeaderSize + kMemoryRegionSize,
     kMemTableHeaderSize + kMaxMemTableRegions * kMemoryRegionSize, false},
    {"SET_LOG_BASE", SizeRule::kUnknown, 0, 0, false},             // 6
    {"SET_LOG_FD", SizeRule::kUnknown, 0, 0, false},               // 7
    {"SET_VRING_NUM", SizeRule::kExact, kState, kState, false},    // 8
    {"SET_VRING_ADDR", SizeRule::kExact, kVringAddressSize,        // 9
     kVringAddressSize, false},
    {"SET_VRING_BASE", SizeRule::kExact, kState, kState, false},   // 10
    {"GET_VRING_BASE", SizeRule::kExact, kState, kState, true},    // 11
    {"SET_VRING_KICK", SizeRule::kExact, kU64, kU64, false},       // 12
    {"SET_VRING_CALL", SizeRule::kExact, kU64, kU64, false},       // 13
    {"SET_VRING_ERR", SizeRule::kExact, kU64, kU64, false},        // 14
    {"GET_PROTOCOL_FEATURES", SizeRule::kExact, 0, 0, true},       // 15
    {"SET_PROTOCOL_FEATURES", SizeRule::kExact, kU64, kU64, false},  // 16
    {"GET_QUEUE_NUM", SizeRule::kExact, 0, 0, true},               // 17
    {"SET_VRING_ENABLE", SizeRule::kExact, kState, kState, false},  // 18
    {"SEND_RARP", SizeRule::kUnknown, 0, 0, false},                // 19
    {"NET_SET_MTU", SizeRule::kUnknown, 0, 0, false},              // 20
    {"SET_BACKEND_REQ_FD", SizeRule::kUnknown, 0, 0, false},       // 21
    {"IOTLB_MSG", SizeRule::kUnknown, 0, 0, false},                // 22
    {"SET_VRING_ENDIAN", SizeRule::kUnknown, 0, 0, false},         // 23
    {"GET_CONFIG", SizeRule::kRange, kConfigHeaderSize,            // 24
     kConfigHeaderSize + kMaxConfigSize, true},
    {"SET_CONFIG", SizeRule::kRange, kConfigHeaderSize,            // 25
     kConfigHeaderSize + kMaxConfigSize, false},
    {"CREATE_CRYPTO_SESSION", SizeRule::kUnknown, 0, 0, false},    // 26
    {"CLOSE_CRYPTO_SESSION", SizeRule::kUnknown, 0, 0, false},     // 27
    {"POSTCOPY_ADVISE", SizeRule::kUnknown, 0, 0, false},          // 28
    {"POSTCOPY_LISTEN", SizeRule::kUnknown, 0, 0, false},          // 29
    {"POSTCOPY_END", SizeRule::kUnknown, 0, 0, false},             // 30
    {"GET_INFLIGHT_FD", SizeRule::kUnknown, 0, 0, false},          // 31
    {"SET_INFLIGHT_FD", SizeRule::kUnknown, 0, 0, false},          // 32
    {"GPU_SET_SOCKET", SizeRule::kUnknown, 0, 0, false},           // 33
    {"RESET_DEVICE", SizeRule::kUnknown, 0, 0, false},             // 34
    {"VRING_KICK", SizeRule::kUnknown, 0, 0, false},               // 35
    {"GET_MAX_MEM_SLOTS", SizeRule::kExact, 0, 0, true},           // 36
    {"ADD_MEM_REG", SizeRule::kExact, kSingleRegionSize,           // 37
     kSingleRegionSize, false},
    {"REM_MEM_REG", SizeRule::kExact, kSingleRegionSize,           // 38
     kSingleRegionSize, false},
    {"SET_STATUS", SizeRule::kUnknown, 0, 0, false},               // 39
    {"GET_STATUS", SizeRule::kUnknown, 0, 0, false},               // 40
    {"GET_SHARED_OBJECT", SizeRule::kUnknown, 0, 0, false},        // 41
    {"SET_DEVICE_STATE_FD", SizeRule::kUnknown, 0, 0, false},      // 42
    {"CHECK_DEVICE_STATE", SizeRule::kUnknown, 0, 0, false},       // 43
    {"GET_SHMEM_CONFIG", SizeRule::kUnknown, 0, 0, false},         // 44
};

constexpr size_t kNumRequests = sizeof(kRequests) / sizeof(kRequests[0]);
static_assert(kNumRequests == kGetShmemConfig + 1, "request table incomplete");

const RequestInfo* RequestInfoFor(uint32_t request) {
  if (request >= kNumRequests) return nullptr;
  return &kRequests[request];
}

// Little helpers over native byte order; memcpy keeps unaligned reads defined.
uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
uint64_t LoadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
void AppendU32(std::vector<uint8_t>& out, uint32_t v) {
  uint8_t b[sizeof(v)];
  std::memcpy(b, &v, sizeof(v));
  out.insert(out.end(), b, b + sizeof(v));
}
void AppendU64(std::vector<uint8_t>& out, uint64_t v) {
  uint8_t b[sizeof(v)];
  std::memcpy(b, &v, sizeof(v));
  out.insert(out.end(), b, b + sizeof(v));
}

absl::Status CheckSize(absl::Span<const uint8_t> payload, size_t want,
                       const char* what) {
  if (payload.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": payload is ", payload.size(), " bytes, expected ", want));
  }
  return absl::OkStatus();
}

MemoryRegionDesc LoadRegion(const uint8_t* p) {
  MemoryRegionDesc r;
  r.guest_addr = LoadU64(p);
  r.size = LoadU64(p + 8);
  r.user_addr = LoadU64(p + 16);
  r.mmap_offset = LoadU64(p + 24);
  return r;
}

void AppendRegion(std::vector<uint8_t>& out, const MemoryRegionDesc& r) {
  AppendU64(out, r.guest_addr);
  AppendU64(out, r.size);
  AppendU64(out, r.user_addr);
  AppendU64(out, r.mmap_offset);
}

bool AddOverflows(uint64_t a, uint64_t b) {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum);
}

}  // namespace

std::string RequestName(uint32_t request) {
  const RequestInfo* info = RequestInfoFor(request);
  if (info == nullptr) return absl::StrCat("UNKNOWN(", request, ")");
  return info->name;
}

absl::Status CheckRequestHeader(const MessageHeader& header) {
  if ((header.flags & kVersionMask) != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported vhost-user version in flags 0x",
                     absl::Hex(header.flags)));
  }
  if ((header.flags & ~(kVersionMask | kFlagNeedReply)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid request flags 0x", absl::Hex(header.flags)));
  }
  if (header.size > kMaxPayloadSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload of ", header.size, " bytes exceeds ",
                     kMaxPayloadSize));
  }
  return absl::OkStatus();
}

absl::Status CheckRequestSize(uint32_t request, uint32_t size) {
  const RequestInfo* info = RequestInfoFor(request);
  if (info == nullptr || info->rule == SizeRule::kUnknown) {
    return absl::NotFoundError(
        absl::StrCat("no payload layout for ", RequestName(request)));
  }
  if (size < info->min || size > info->max) {
    if (info->rule == SizeRule::kExact) {
      return absl::InvalidArgumentError(
          absl::StrCat(info->name, ": payload is ", size,
                       " bytes, expected ", info->min));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(info->name, ": payload is ", size, " bytes, expected ",
                     info->min, "..", info->max));
  }
  return absl::OkStatus();
}

bool RequestHasReply(uint32_t request) {
  const RequestInfo* info = RequestInfoFor(request);
  return info != nullptr && info->has_reply;
}

absl::Status CheckRingIndex(uint64_t index, uint32_t num_queues) {
  if (index >= num_queues) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring index ", index, " out of range (", num_queues, " queues)"));
  }
  return absl::OkStatus();
}

absl::Status CheckRingSize(uint32_t num) {
  if (num == 0 || num > kMaxRingSize || (num & (num - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring size ", num, " is not a power of two in 1..", kMaxRingSize));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ParseU64(absl::Span<const uint8_t> payload) {
  if (absl::Status s = CheckSize(payload, kU64, "u64"); !s.ok()) return s;
  return LoadU64(payload.data());
}

absl::StatusOr<VringState> ParseVringState(absl::Span<const uint8_t> payload) {
  if (absl::Status s = CheckSize(payload, kVringStateSize, "vring state");
      !s.ok()) {
    return s;
  }
  VringState state;
  state.index = LoadU32(payload.data());
  state.num = LoadU32(payload.data() + 4);
  return state;
}

absl::StatusOr<VringAddress> ParseVringAddress(
    absl::Span<const uint8_t> payload) {
  if (absl::Status s = CheckSize(payload, kVringAddressSize, "vring address");
      !s.ok()) {
    return s;
  }
  const uint8_t* p = payload.data();
  VringAddress addr;
  addr.index = LoadU32(p);
  addr.flags = LoadU32(p + 4);
  addr.desc_user_addr = LoadU64(p + 8);
  addr.used_user_addr = LoadU64(p + 16);
  addr.avail_user_addr = LoadU64(p + 24);
  addr.log_guest_addr = LoadU64(p + 32);
  return addr;
}

absl::Status CheckMemoryRegion(const MemoryRegionDesc& region) {
  if (region.size == 0) {
    return absl::InvalidArgumentError("memory region of size 0");
  }
  if (AddOverflows(region.guest_addr, region.size)) {
    return absl::InvalidArgumentError("memory region: guest_addr + size overflows");
  }
  if (AddOverflows(region.user_addr, region.size)) {
    return absl::InvalidArgumentError("memory region: user_addr + size overflows");
  }
  if (AddOverflows(region.mmap_offset, region.size)) {
    return absl::InvalidArgumentError(
        "memory region: mmap_offset + size overflows");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MemoryRegionDesc>> ParseMemTable(
    absl::Span<const uint8_t> payload) {
  if (payload.size() < kMemTableHeaderSize) {
    return absl::InvalidArgumentError("memory table shorter than its header");
  }
  const uint32_t nregions = LoadU32(payload.data());
  if (nregions == 0 || nregions > kMaxMemTableRegions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory table with ", nregions, " regions (1..", kMaxMemTableRegions,
        ")"));
  }
  // nregions <= 8, so this cannot overflow.
  const size_t want = kMemTableHeaderSize + size_t{nregions} * kMemoryRegionSize;
  if (absl::Status s = CheckSize(payload, want, "memory table"); !s.ok()) {
    return s;
  }
  std::vector<MemoryRegionDesc> regions;
  regions.reserve(nregions);
  for (uint32_t i = 0; i < nregions; ++i) {
    MemoryRegionDesc r = LoadRegion(payload.data() + kMemTableHeaderSize +
                                    size_t{i} * kMemoryRegionSize);
    if (absl::Status s = CheckMemoryRegion(r); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("region ", i, ": ", s.message()));
    }
    regions.push_back(r);
  }
  return regions;
}

absl::StatusOr<MemoryRegionDesc> ParseSingleRegion(
    absl::Span<const uint8_t> payload) {
  if (absl::Status s = CheckSize(payload, kSingleRegionSize, "memory region");
      !s.ok()) {
    return s;
  }
  MemoryRegionDesc r = LoadRegion(payload.data() + 8);
  if (absl::Status s = CheckMemoryRegion(r); !s.ok()) return s;
  return r;
}

absl::StatusOr<ConfigAccess> ParseConfig(absl::Span<const uint8_t> payload) {
  if (payload.size() < kConfigHeaderSize) {
    return absl::InvalidArgumentError("config access shorter than its header");
  }
  ConfigAccess access;
  access.offset = LoadU32(payload.data());
  access.size = LoadU32(payload.data() + 4);
  access.flags = LoadU32(payload.data() + 8);
  if (access.size > kMaxConfigSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config access of ", access.size, " bytes (max ", kMaxConfigSize, ")"));
  }
  // size <= 256, so the sum cannot overflow size_t.
  if (absl::Status s = CheckSize(payload, kConfigHeaderSize + access.size,
                                 "config access");
      !s.ok()) {
    return s;
  }
  if ((access.flags & ~kConfigFlagLiveMigration) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid config flags 0x", absl::Hex(access.flags)));
  }
  if (uint64_t{access.offset} + access.size > UINT32_MAX) {
    return absl::InvalidArgumentError("config offset + size overflows");
  }
  access.payload.assign(payload.begin() + kConfigHeaderSize, payload.end());
  return access;
}

absl::StatusOr<VringFdRequest> ParseVringFdRequest(uint64_t value,
                                                   uint32_t num_queues) {
  const bool no_fd = (value & kVringNoFdMask) != 0;
  // Compare everything except the NOFD bit at full width: a value such as
  // 0x10000 | index must not pass because its low 8 bits do.
  const uint64_t index = value & ~kVringNoFdMask;
  if (absl::Status s = CheckRingIndex(index, num_queues); !s.ok()) return s;
  // num_queues <= kMaxQueues (256), so index < 256 fits the 8-bit field.
  if (index > kVringIndexMask) {
    return absl::InvalidArgumentError("ring index does not fit 8 bits");
  }
  VringFdRequest req;
  req.index = static_cast<uint32_t>(index);
  req.no_fd = no_fd;
  return req;
}

std::vector<uint8_t> EncodeMessage(const MessageHeader& header,
                                   absl::Span<const uint8_t> payload) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + payload.size());
  AppendU32(out, header.request);
  AppendU32(out, header.flags);
  AppendU32(out, header.size);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<uint8_t> EncodeU64(uint64_t value) {
  std::vector<uint8_t> out;
  AppendU64(out, value);
  return out;
}

std::vector<uint8_t> EncodeVringState(const VringState& state) {
  std::vector<uint8_t> out;
  AppendU32(out, state.index);
  AppendU32(out, state.num);
  return out;
}

std::vector<uint8_t> EncodeVringAddress(const VringAddress& addr) {
  std::vector<uint8_t> out;
  AppendU32(out, addr.index);
  AppendU32(out, addr.flags);
  AppendU64(out, addr.desc_user_addr);
  AppendU64(out, addr.used_user_addr);
  AppendU64(out, addr.avail_user_addr);
  AppendU64(out, addr.log_guest_addr);
  return out;
}

std::vector<uint8_t> EncodeMemTable(absl::Span<const MemoryRegionDesc> regions) {
  std::vector<uint8_t> out;
  AppendU32(out, static_cast<uint32_t>(regions.size()));
  AppendU32(out, 0);  // padding
  for (const MemoryRegionDesc& r : regions) AppendRegion(out, r);
  return out;
}

std::vector<uint8_t> EncodeSingleRegion(const MemoryRegionDesc& region) {
  std::vector<uint8_t> out;
  AppendU64(out, 0);  // padding
  AppendRegion(out, region);
  return out;
}

std::vector<uint8_t> EncodeConfig(uint32_t offset, uint32_t flags,
                                  absl::Span<const uint8_t> bytes) {
  std::vector<uint8_t> out;
  AppendU32(out, offset);
  AppendU32(out, static_cast<uint32_t>(bytes.size()));
  AppendU32(out, flags);
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

MessageHeader DecodeHeader(const uint8_t* bytes) {
  MessageHeader header;
  header.request = LoadU32(bytes);
  header.flags = LoadU32(bytes + 4);
  header.size = LoadU32(bytes + 8);
  return header;
}

}  // namespace vhost_user
}  // namespace vrpc
