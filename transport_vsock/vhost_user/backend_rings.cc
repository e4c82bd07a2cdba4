// Backend handlers for memory, rings and config space (split from
// backend.cc by concern; backend.h states the rules they implement).
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"
#include "transport_vsock/vhost_user/backend.h"

namespace vrpc {
namespace vhost_user {
namespace {

// Bytes of each split-ring part for |num| entries (num <= 32768: no
// overflow). The avail and used rings include their trailing event word.
uint64_t DescBytes(uint32_t num) { return 16ull * num; }
uint64_t AvailBytes(uint32_t num) { return 6ull + 2ull * num; }
uint64_t UsedBytes(uint32_t num) { return 6ull + 8ull * num; }

MemoryTable::Limits LimitsFor(const BackendOptions& options, size_t max_regions) {
  MemoryTable::Limits limits;
  limits.max_regions = max_regions;
  limits.max_total_bytes = options.max_memory_bytes;
  return limits;
}

absl::Status ExpectFds(const Message& msg, size_t want) {
  if (msg.fds.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(RequestName(msg.header.request), " carries ",
                     msg.fds.size(), " descriptor(s), expected ", want));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

absl::Status Backend::InstallMemoryTable(
    std::shared_ptr<const MemoryTable> table) {
  // Started rings must stay mapped at the same guest-physical addresses.
  for (uint32_t i = 0; i < num_queues_; ++i) {
    const Ring& ring = rings_[i];
    if (!ring.started) continue;
    uint64_t desc, avail, used;
    absl::Status s = TranslateRing(ring, *table, &desc, &avail, &used);
    if (s.ok() && (desc != ring.desc_gpa || avail != ring.avail_gpa ||
                   used != ring.used_gpa)) {
      s = absl::FailedPreconditionError("ring moved in guest memory");
    }
    if (!s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "new memory table does not hold started ring ", i, ": ",
          s.message()));
    }
  }
  memory_ = std::move(table);
  device_->OnMemoryTableChanged(memory_);
  return TryStartAllRings();
}

absl::StatusOr<uint64_t> Backend::HandleSetMemTable(Message& msg) {
  VRPC_ASSIGN_OR_RETURN(std::vector<MemoryRegionDesc> regions,
                        ParseMemTable(msg.payload));
  VRPC_RETURN_IF_ERROR(ExpectFds(msg, regions.size()));
  const size_t max_regions =
      std::max<size_t>(kMaxMemTableRegions, options_.max_mem_slots);
  // Map() takes the descriptors and closes them whatever happens.
  VRPC_ASSIGN_OR_RETURN(
      std::shared_ptr<const MemoryTable> table,
      MemoryTable::Map(regions, std::move(msg.fds),
                       LimitsFor(options_, max_regions)));
  msg.fds.clear();
  // The previous table is released here unless the device still holds it.
  VRPC_RETURN_IF_ERROR(InstallMemoryTable(std::move(table)));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleAddMemReg(Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const MemoryRegionDesc region,
                        ParseSingleRegion(msg.payload));
  VRPC_RETURN_IF_ERROR(ExpectFds(msg, 1));
  UniqueFd fd = std::move(msg.fds[0]);
  msg.fds.clear();
  const std::shared_ptr<const MemoryTable> base =
      memory_ != nullptr ? memory_ : MemoryTable::Empty();
  VRPC_ASSIGN_OR_RETURN(
      std::shared_ptr<const MemoryTable> table,
      base->WithRegionAdded(region, std::move(fd),
                            LimitsFor(options_, options_.max_mem_slots)));
  VRPC_RETURN_IF_ERROR(InstallMemoryTable(std::move(table)));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleRemMemReg(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const MemoryRegionDesc region,
                        ParseSingleRegion(msg.payload));
  // vhost-user.rst: a backend MAY accept one (ignored) descriptor here; it
  // is closed with the message.
  if (msg.fds.size() > 1) VRPC_RETURN_IF_ERROR(ExpectFds(msg, 0));
  if (memory_ == nullptr) {
    return absl::FailedPreconditionError("REM_MEM_REG without a memory table");
  }
  absl::StatusOr<std::shared_ptr<const MemoryTable>> table =
      memory_->WithRegionRemoved(region);
  if (!table.ok()) return absl::InvalidArgumentError(table.status().message());
  VRPC_RETURN_IF_ERROR(InstallMemoryTable(*std::move(table)));
  return 0;
}

// ---------------------------------------------------------------------------
// Ring helpers
// ---------------------------------------------------------------------------

absl::StatusOr<VringState> Backend::ParseStateFor(const Message& msg) const {
  VRPC_ASSIGN_OR_RETURN(const VringState state, ParseVringState(msg.payload));
  VRPC_RETURN_IF_ERROR(CheckRingIndex(state.index, num_queues_));
  return state;
}

absl::Status Backend::CheckNotStarted(uint32_t index, uint32_t request) const {
  if (rings_[index].started) {
    return absl::FailedPreconditionError(absl::StrCat(
        RequestName(request), " on started ring ", index,
        " (send GET_VRING_BASE first)"));
  }
  return absl::OkStatus();
}

absl::Status Backend::TranslateRing(const Ring& ring, const MemoryTable& table,
                                    uint64_t* desc, uint64_t* avail,
                                    uint64_t* used) const {
  // Before SET_VRING_NUM only the first byte of each part can be checked.
  const uint32_t num = ring.num_set ? ring.num : 0;
  struct Part {
    const char* name;
    uint64_t user_addr;
    uint64_t len;
    uint64_t* guest_addr;
  };
  const Part parts[] = {
      {"descriptor table", ring.addr.desc_user_addr, num ? DescBytes(num) : 1, desc},
      {"avail ring", ring.addr.avail_user_addr, num ? AvailBytes(num) : 1, avail},
      {"used ring", ring.addr.used_user_addr, num ? UsedBytes(num) : 1, used},
  };
  for (const Part& part : parts) {
    absl::StatusOr<uint64_t> gpa = table.UserToGuest(part.user_addr, part.len);
    if (!gpa.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(part.name, ": ", gpa.status().message()));
    }
    *part.guest_addr = *gpa;
  }
  return absl::OkStatus();
}

RingConfig Backend::MakeRingConfig(uint32_t index) const {
  const Ring& ring = rings_[index];
  RingConfig config;
  config.index = index;
  config.num = ring.num;
  config.base = ring.base;
  config.desc_guest_addr = ring.desc_gpa;
  config.avail_guest_addr = ring.avail_gpa;
  config.used_guest_addr = ring.used_gpa;
  config.desc_user_addr = ring.addr.desc_user_addr;
  config.avail_user_addr = ring.addr.avail_user_addr;
  config.used_user_addr = ring.addr.used_user_addr;
  config.kick = ring.kick;
  config.call = ring.call;
  config.err = ring.err;
  config.enabled = ring_enabled(index);
  config.event_idx = (acked_features_ & kFeatureEventIdx) != 0;
  return config;
}

absl::Status Backend::TryStartRing(uint32_t index) {
  Ring& ring = rings_[index];
  if (ring.started || !ring.kicked || !ring.num_set || !ring.addr_set ||
      memory_ == nullptr || memory_->empty()) {
    return absl::OkStatus();
  }
  uint64_t desc, avail, used;
  if (absl::Status s = TranslateRing(ring, *memory_, &desc, &avail, &used);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring ", index, " cannot start: ", s.message()));
  }
  ring.desc_gpa = desc;
  ring.avail_gpa = avail;
  ring.used_gpa = used;
  ring.started = true;
  device_->OnRingStarted(MakeRingConfig(index), memory_);
  return absl::OkStatus();
}

absl::Status Backend::TryStartAllRings() {
  for (uint32_t i = 0; i < num_queues_; ++i) {
    VRPC_RETURN_IF_ERROR(TryStartRing(i));
  }
  return absl::OkStatus();
}

uint16_t Backend::StopRing(uint32_t index) {
  Ring& ring = rings_[index];
  VRPC_DCHECK(ring.started);
  ring.started = false;
  const uint16_t next_avail = device_->OnRingStopped(index);
  // A restart needs a new kick (QEMU re-sends KICK and CALL on start).
  ring.kicked = false;
  ring.kick.reset();
  ring.call.reset();
  return next_avail;
}

void Backend::NotifyRingUpdated(uint32_t index) {
  if (rings_[index].started) device_->OnRingUpdated(MakeRingConfig(index));
}

// ---------------------------------------------------------------------------
// Ring messages
// ---------------------------------------------------------------------------

absl::StatusOr<uint64_t> Backend::HandleSetVringNum(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const VringState state, ParseStateFor(msg));
  VRPC_RETURN_IF_ERROR(CheckRingSize(state.num));
  VRPC_RETURN_IF_ERROR(CheckNotStarted(state.index, msg.header.request));
  Ring& ring = rings_[state.index];
  ring.num = state.num;
  ring.num_set = true;
  VRPC_RETURN_IF_ERROR(TryStartRing(state.index));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetVringAddr(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const VringAddress addr, ParseVringAddress(msg.payload));
  VRPC_RETURN_IF_ERROR(CheckRingIndex(addr.index, num_queues_));
  if ((addr.flags & ~kVringAddrFlagLog) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SET_VRING_ADDR flags 0x", absl::Hex(addr.flags)));
  }
  VRPC_RETURN_IF_ERROR(CheckNotStarted(addr.index, msg.header.request));
  Ring candidate = rings_[addr.index];
  candidate.addr = addr;
  candidate.addr_set = true;
  if (memory_ != nullptr && !memory_->empty()) {
    // Fail early on addresses outside guest memory.
    uint64_t desc, avail, used;
    VRPC_RETURN_IF_ERROR(
        TranslateRing(candidate, *memory_, &desc, &avail, &used));
  }
  rings_[addr.index].addr = addr;
  rings_[addr.index].addr_set = true;
  VRPC_RETURN_IF_ERROR(TryStartRing(addr.index));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetVringBase(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const VringState state, ParseStateFor(msg));
  // Split rings only: the avail index is 16 bits.
  if (state.num > UINT16_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("SET_VRING_BASE ", state.num, " exceeds 16 bits"));
  }
  VRPC_RETURN_IF_ERROR(CheckNotStarted(state.index, msg.header.request));
  rings_[state.index].base = static_cast<uint16_t>(state.num);
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleGetVringBase(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const VringState state, ParseStateFor(msg));
  Ring& ring = rings_[state.index];
  if (ring.started) {
    ring.base = StopRing(state.index);
  } else {
    ring.kicked = false;
    ring.kick.reset();
    ring.call.reset();
  }
  VringState reply;
  reply.index = state.index;
  reply.num = ring.base;
  VRPC_RETURN_IF_ERROR(SendReply(msg.header.request, EncodeVringState(reply)));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetVringFd(Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const uint64_t value, ParseU64(msg.payload));
  VRPC_ASSIGN_OR_RETURN(const VringFdRequest req,
                        ParseVringFdRequest(value, num_queues_));
  VRPC_RETURN_IF_ERROR(ExpectFds(msg, req.no_fd ? 0 : 1));
  SharedFd fd;
  if (!req.no_fd) {
    fd = std::make_shared<const UniqueFd>(std::move(msg.fds[0]));
    msg.fds.clear();
  }
  Ring& ring = rings_[req.index];
  // Assigning drops our reference to the descriptor being replaced.
  switch (msg.header.request) {
    case kSetVringKick:
      ring.kick = std::move(fd);
      ring.kicked = true;
      if (!ring.started) {
        VRPC_RETURN_IF_ERROR(TryStartRing(req.index));
        return 0;
      }
      break;
    case kSetVringCall:
      ring.call = std::move(fd);
      break;
    default:
      ring.err = std::move(fd);
      break;
  }
  NotifyRingUpdated(req.index);
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetVringEnable(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const VringState state, ParseStateFor(msg));
  if (state.num > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("SET_VRING_ENABLE with ", state.num, " (0 or 1)"));
  }
  Ring& ring = rings_[state.index];
  const bool enable = state.num == 1;
  if (ring.enable_flag == enable) return 0;
  ring.enable_flag = enable;
  NotifyRingUpdated(state.index);
  return 0;
}

// ---------------------------------------------------------------------------
// Config space
// ---------------------------------------------------------------------------

absl::StatusOr<uint64_t> Backend::HandleGetConfig(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const ConfigAccess access, ParseConfig(msg.payload));
  // ParseConfig guarantees offset + size fits 32 bits.
  const bool in_range = access.offset + access.size <= device_->ConfigSize();
  absl::StatusOr<std::vector<uint8_t>> bytes =
      in_range ? device_->ReadConfig(access.offset, access.size)
               : absl::OutOfRangeError("config access outside config space");
  if (bytes.ok() && bytes->size() != access.size) {
    VRPC_LOG(ERROR) << "device ReadConfig returned " << bytes->size()
                    << " bytes for " << access.size;
    bytes = absl::InternalError("device returned a wrong config length");
  }
  if (!bytes.ok()) {
    // vhost-user.rst: a zero-length reply tells the frontend it failed.
    ++stats_.refused;
    VRPC_RETURN_IF_ERROR(SendReply(msg.header.request, {}));
    return 0;
  }
  VRPC_RETURN_IF_ERROR(SendReply(
      msg.header.request, EncodeConfig(access.offset, access.flags, *bytes)));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetConfig(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const ConfigAccess access, ParseConfig(msg.payload));
  if (access.offset + access.size > device_->ConfigSize()) return 1;
  absl::Status s =
      device_->WriteConfig(access.offset, access.payload, access.flags);
  if (!s.ok()) {
    VRPC_LOG(INFO) << "vhost-user: config write refused: " << s;
    return 1;
  }
  return 0;
}

}  // namespace vhost_user
}  // namespace vrpc
