// File: transport_vsock/vhost_user/message.h
//
// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte
// header {u32 request; u32 flags; u32 size} in native byte order, then `size`
// payload bytes, with file descriptors in SCM_RIGHTS ancillary data.
//
// This file holds the constants, the payload types and strict, pure parsers
// for them. Every parser takes untrusted bytes and returns a Status: nothing
// here CHECKs on input. The rules (see README.md, "Caps"):
//   - payload size <= kMaxPayloadSize (4 KiB), <= kMaxFds fds per message;
//   - each known request has an exact payload size (CheckRequestSize);
//   - ring indices are compared at full width (u32 or u64) against the number
//     of queues before anything is narrowed (CVE-2020-10723);
//   - every addr+size and mmap_offset+size is overflow-checked.
//
// Thread-safety: everything here is a value type or a pure function.
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_MESSAGE_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/base/unique_fd.h"

namespace vrpc {
namespace vhost_user {

// ---------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------

inline constexpr size_t kHeaderSize = 12;
// Largest payload accepted from a frontend (rust-vmm MAX_MSG_SIZE).
inline constexpr uint32_t kMaxPayloadSize = 0x1000;
// Most descriptors accepted with one message (rust-vmm MAX_ATTACHED_FD_ENTRIES).
inline constexpr size_t kMaxFds = 32;

// Header flag bits.
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;
// What a backend sets on every reply: version | REPLY (0x5).
inline constexpr uint32_t kReplyFlags = kVersion | kFlagReply;

struct MessageHeader {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
};

// Front-end request ids (vhost-user.rst "Front-end message types").
enum Request : uint32_t {
  kNone = 0,
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kSetBackendReqFd = 21,
  kIotlbMsg = 22,
  kSetVringEndian = 23,
  kGetConfig = 24,
  kSetConfig = 25,
  kCreateCryptoSession = 26,
  kCloseCryptoSession = 27,
  kPostcopyAdvise = 28,
  kPostcopyListen = 29,
  kPostcopyEnd = 30,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
  kGpuSetSocket = 33,
  kResetDevice = 34,
  kVringKick = 35,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
  kSetStatus = 39,
  kGetStatus = 40,
  kGetSharedObject = 41,
  kSetDeviceStateFd = 42,
  kCheckDeviceState = 43,
  kGetShmemConfig = 44,
};

// A printable name for any u32 request code ("UNKNOWN(n)" outside the table);
// never indexes out of range.
std::string RequestName(uint32_t request);

// ---------------------------------------------------------------------------
// Feature bits
// ---------------------------------------------------------------------------

// Virtio feature bit 30, reused by vhost-user: the backend speaks
// GET/SET_PROTOCOL_FEATURES, and rings start disabled.
inline constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;
// Virtio transport feature bits the backend cares about.
inline constexpr uint64_t kFeatureEventIdx = 1ull << 29;
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;

// Protocol feature bits (vhost-user.rst "Protocol features").
enum ProtocolFeature : uint64_t {
  kProtocolMq = 1ull << 0,
  kProtocolLogShmfd = 1ull << 1,
  kProtocolRarp = 1ull << 2,
  kProtocolReplyAck = 1ull << 3,
  kProtocolMtu = 1ull << 4,
  kProtocolBackendReq = 1ull << 5,
  kProtocolCrossEndian = 1ull << 6,
  kProtocolCryptoSession = 1ull << 7,
  kProtocolPagefault = 1ull << 8,
  kProtocolConfig = 1ull << 9,
  kProtocolBackendSendFd = 1ull << 10,
  kProtocolHostNotifier = 1ull << 11,
  kProtocolInflightShmfd = 1ull << 12,
  kProtocolResetDevice = 1ull << 13,
  kProtocolInbandNotifications = 1ull << 14,
  kProtocolConfigureMemSlots = 1ull << 15,
  kProtocolStatus = 1ull << 16,
};

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

// Most queues a backend may expose: SET_VRING_KICK/CALL/ERR carry the index
// in 8 bits.
inline constexpr uint32_t kMaxQueues = 256;
// Largest split-ring size accepted (virtio: a power of two <= 32768).
inline constexpr uint32_t kMaxRingSize = 32768;
// Regions in one SET_MEM_TABLE (VHOST_MEMORY_BASELINE_NREGIONS).
inline constexpr uint32_t kMaxMemTableRegions = 8;
// Largest config-space access (libvhost-user VHOST_USER_MAX_CONFIG_SIZE).
inline constexpr uint32_t kMaxConfigSize = 256;

// SET_VRING_KICK/CALL/ERR u64: bits 0-7 index, bit 8 "no fd" (polling).
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFdMask = 1ull << 8;

// SET_VRING_ADDR flags: bit 0 VHOST_VRING_F_LOG.
inline constexpr uint32_t kVringAddrFlagLog = 1u << 0;

// Config flags: 0 writable fields, 1 live migration.
inline constexpr uint32_t kConfigFlagLiveMigration = 1u << 0;

// vring state description {u32 index; u32 num}: 8 bytes.
struct VringState {
  uint32_t index = 0;
  uint32_t num = 0;
};
inline constexpr size_t kVringStateSize = 8;

// vring address description: 40 bytes. Ring addresses are frontend *user*
// (virtual) addresses unless VIRTIO_F_IOMMU_PLATFORM was negotiated.
struct VringAddress {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t desc_user_addr = 0;
  uint64_t used_user_addr = 0;
  uint64_t avail_user_addr = 0;
  uint64_t log_guest_addr = 0;
};
inline constexpr size_t kVringAddressSize = 40;

// One memory region {u64 guest_addr; u64 size; u64 user_addr; u64
// mmap_offset}: 32 bytes.
struct MemoryRegionDesc {
  uint64_t guest_addr = 0;
  uint64_t size = 0;
  uint64_t user_addr = 0;
  uint64_t mmap_offset = 0;
};
inline constexpr size_t kMemoryRegionSize = 32;
// SET_MEM_TABLE: {u32 nregions; u32 padding; region[nregions]}.
inline constexpr size_t kMemTableHeaderSize = 8;
// ADD_MEM_REG / REM_MEM_REG: {u64 padding; region}.
inline constexpr size_t kSingleRegionSize = 8 + kMemoryRegionSize;

// Config space access {u32 offset; u32 size; u32 flags; u8 payload[size]}.
struct ConfigAccess {
  uint32_t offset = 0;
  uint32_t size = 0;
  uint32_t flags = 0;
  std::vector<uint8_t> payload;  // exactly |size| bytes
};
inline constexpr size_t kConfigHeaderSize = 12;

// ---------------------------------------------------------------------------
// A received message
// ---------------------------------------------------------------------------

// One message read from the socket. Owns every descriptor that arrived with
// it: they are closed when the Message is destroyed unless a handler moved
// them out. Move-only.
struct Message {
  MessageHeader header;
  std::vector<uint8_t> payload;
  std::vector<UniqueFd> fds;

  bool need_reply() const { return (header.flags & kFlagNeedReply) != 0; }
};

// ---------------------------------------------------------------------------
// Validation and parsing (pure; all inputs untrusted)
// ---------------------------------------------------------------------------

// Checks a request header from a frontend: version 1, REPLY clear, no flag
// bits beyond NEED_REPLY, size <= kMaxPayloadSize. kInvalidArgument otherwise.
[[nodiscard]] absl::Status CheckRequestHeader(const MessageHeader& header);

// Table-driven per-request size rule: the exact payload size of fixed-size
// requests; bounds for SET_MEM_TABLE and GET/SET_CONFIG (whose exact size the
// parser checks). Returns kNotFound for requests this library does not know
// the layout of (the caller decides what unknown means), kInvalidArgument for
// a wrong size.
[[nodiscard]] absl::Status CheckRequestSize(uint32_t request, uint32_t size);

// Whether |request| is answered with a reply body of its own (then REPLY_ACK
// adds nothing). False for unknown requests.
bool RequestHasReply(uint32_t request);

// Ring index check at full width: kInvalidArgument unless index < num_queues.
[[nodiscard]] absl::Status CheckRingIndex(uint64_t index, uint32_t num_queues);
// Ring size check: non-zero power of two <= kMaxRingSize.
[[nodiscard]] absl::Status CheckRingSize(uint32_t num);

// Each parser requires |payload| to have exactly the layout's size.
[[nodiscard]] absl::StatusOr<uint64_t> ParseU64(absl::Span<const uint8_t> payload);
[[nodiscard]] absl::StatusOr<VringState> ParseVringState(
    absl::Span<const uint8_t> payload);
[[nodiscard]] absl::StatusOr<VringAddress> ParseVringAddress(
    absl::Span<const uint8_t> payload);

// SET_MEM_TABLE: nregions in 1..kMaxMemTableRegions, size exactly
// 8 + 32 * nregions, each region passing CheckMemoryRegion.
[[nodiscard]] absl::StatusOr<std::vector<MemoryRegionDesc>> ParseMemTable(
    absl::Span<const uint8_t> payload);
// ADD_MEM_REG / REM_MEM_REG: 40 bytes; the region passes CheckMemoryRegion.
[[nodiscard]] absl::StatusOr<MemoryRegionDesc> ParseSingleRegion(
    absl::Span<const uint8_t> payload);
// Size > 0 and no u64 overflow in guest_addr+size, user_addr+size,
// mmap_offset+size.
[[nodiscard]] absl::Status CheckMemoryRegion(const MemoryRegionDesc& region);

// GET_CONFIG / SET_CONFIG: size <= kMaxConfigSize, payload exactly 12 + size,
// flags within {0, 1}, offset + size without overflow.
[[nodiscard]] absl::StatusOr<ConfigAccess> ParseConfig(
    absl::Span<const uint8_t> payload);

// SET_VRING_KICK/CALL/ERR u64: no bits beyond index and NOFD, and the index
// (the whole value without the NOFD bit) below |num_queues|.
struct VringFdRequest {
  uint32_t index = 0;
  bool no_fd = false;
};
[[nodiscard]] absl::StatusOr<VringFdRequest> ParseVringFdRequest(
    uint64_t value, uint32_t num_queues);

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

// Appends the header and payload as one contiguous message.
std::vector<uint8_t> EncodeMessage(const MessageHeader& header,
                                   absl::Span<const uint8_t> payload);
std::vector<uint8_t> EncodeU64(uint64_t value);
std::vector<uint8_t> EncodeVringState(const VringState& state);
std::vector<uint8_t> EncodeVringAddress(const VringAddress& addr);
std::vector<uint8_t> EncodeMemTable(absl::Span<const MemoryRegionDesc> regions);
std::vector<uint8_t> EncodeSingleRegion(const MemoryRegionDesc& region);
std::vector<uint8_t> EncodeConfig(uint32_t offset, uint32_t flags,
                                  absl::Span<const uint8_t> bytes);

// Decodes a 12-byte header (no validation).
MessageHeader DecodeHeader(const uint8_t* bytes);

}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_MESSAGE_H_
