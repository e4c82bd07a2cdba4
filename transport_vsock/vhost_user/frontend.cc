#include "transport_vsock/vhost_user/frontend.h"

#include <poll.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace vrpc {
namespace vhost_user {
namespace {

absl::Status BadReply(uint32_t request, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad ", RequestName(request), " reply from the backend: ", why));
}

// Waits until |fd| is readable (or hung up), at most until |deadline|.
absl::Status WaitReadable(int fd, absl::Time deadline) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no reply from the vhost-user backend");
    }
    pollfd pfd = {fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return absl::ErrnoToStatus(errno, "poll");
    if (r > 0) return absl::OkStatus();
  }
}

}  // namespace

Frontend::Frontend(UniqueFd socket, FrontendOptions options)
    : connection_(std::move(socket), options.io_timeout), options_(options) {}

absl::StatusOr<Message> Frontend::AwaitReply(uint32_t request) {
  const absl::Time deadline = absl::Now() + options_.io_timeout;
  for (;;) {
    VRPC_RETURN_IF_ERROR(WaitReadable(connection_.fd(), deadline));
    VRPC_ASSIGN_OR_RETURN(std::optional<Message> msg, connection_.Receive());
    if (!msg.has_value()) continue;  // woken without data; wait again
    // Descriptors in a reply are never expected; |msg| closes them.
    if (msg->header.request != request) {
      return BadReply(request, absl::StrCat("answers ", RequestName(msg->header.request)));
    }
    if (msg->header.flags != kReplyFlags) {
      return BadReply(request, absl::StrCat("flags 0x", absl::Hex(msg->header.flags)));
    }
    if (!msg->fds.empty()) return BadReply(request, "carries descriptors");
    return *std::move(msg);
  }
}

absl::Status Frontend::Request(uint32_t request, absl::Span<const uint8_t> payload,
                               absl::Span<const int> fds) {
  const bool ack = reply_ack_ && !RequestHasReply(request);
  MessageHeader header;
  header.request = request;
  header.flags = kVersion | (ack ? kFlagNeedReply : 0);
  header.size = static_cast<uint32_t>(payload.size());
  VRPC_RETURN_IF_ERROR(connection_.Send(header, payload, fds));
  if (!ack) return absl::OkStatus();
  VRPC_ASSIGN_OR_RETURN(Message reply, AwaitReply(request));
  VRPC_ASSIGN_OR_RETURN(const uint64_t result, ParseU64(reply.payload));
  if (result != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the vhost-user backend refused ", RequestName(request), " (", result, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> Frontend::Call(uint32_t request,
                                                    absl::Span<const uint8_t> payload,
                                                    int64_t size) {
  MessageHeader header;
  header.request = request;
  header.flags = kVersion;
  header.size = static_cast<uint32_t>(payload.size());
  VRPC_RETURN_IF_ERROR(connection_.Send(header, payload));
  VRPC_ASSIGN_OR_RETURN(Message reply, AwaitReply(request));
  if (size >= 0 && reply.payload.size() != static_cast<uint64_t>(size)) {
    return BadReply(request, absl::StrCat(reply.payload.size(), " bytes, want ", size));
  }
  return std::move(reply.payload);
}

absl::StatusOr<uint64_t> Frontend::GetU64(uint32_t request) {
  VRPC_ASSIGN_OR_RETURN(const std::vector<uint8_t> payload, Call(request, {}, 8));
  return ParseU64(payload);
}

absl::StatusOr<uint64_t> Frontend::GetFeatures() { return GetU64(kGetFeatures); }

absl::Status Frontend::SetFeatures(uint64_t features) {
  return Request(kSetFeatures, EncodeU64(features));
}

absl::StatusOr<uint64_t> Frontend::GetProtocolFeatures() {
  return GetU64(kGetProtocolFeatures);
}

absl::Status Frontend::SetProtocolFeatures(uint64_t features) {
  VRPC_RETURN_IF_ERROR(Request(kSetProtocolFeatures, EncodeU64(features)));
  reply_ack_ = (features & kProtocolReplyAck) != 0;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Frontend::GetQueueNum() { return GetU64(kGetQueueNum); }

absl::Status Frontend::SetOwner() { return Request(kSetOwner, {}); }

absl::Status Frontend::SetMemTable(absl::Span<const MemoryRegionDesc> regions,
                                   absl::Span<const int> fds) {
  if (regions.empty() || regions.size() > kMaxMemTableRegions ||
      regions.size() != fds.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SET_MEM_TABLE with ", regions.size(), " regions and ", fds.size(), " descriptors"));
  }
  return Request(kSetMemTable, EncodeMemTable(regions), fds);
}

absl::Status Frontend::SetVringNum(uint32_t index, uint32_t num) {
  return Request(kSetVringNum, EncodeVringState({index, num}));
}

absl::Status Frontend::SetVringBase(uint32_t index, uint32_t base) {
  return Request(kSetVringBase, EncodeVringState({index, base}));
}

absl::Status Frontend::SetVringAddr(const VringAddress& address) {
  return Request(kSetVringAddr, EncodeVringAddress(address));
}

absl::Status Frontend::SetVringFd(uint32_t request, uint32_t index, int fd) {
  if (index > kVringIndexMask) {
    return absl::InvalidArgumentError(absl::StrCat("ring index ", index, " > 255"));
  }
  const uint64_t value = index | (fd < 0 ? kVringNoFdMask : 0);
  if (fd < 0) return Request(request, EncodeU64(value));
  const int fds[1] = {fd};
  return Request(request, EncodeU64(value), fds);
}

absl::Status Frontend::SetVringKick(uint32_t index, int fd) {
  return SetVringFd(kSetVringKick, index, fd);
}

absl::Status Frontend::SetVringCall(uint32_t index, int fd) {
  return SetVringFd(kSetVringCall, index, fd);
}

absl::Status Frontend::SetVringErr(uint32_t index, int fd) {
  return SetVringFd(kSetVringErr, index, fd);
}

absl::Status Frontend::SetVringEnable(uint32_t index, bool enable) {
  return Request(kSetVringEnable, EncodeVringState({index, enable ? 1u : 0u}));
}

absl::StatusOr<uint16_t> Frontend::GetVringBase(uint32_t index) {
  VRPC_ASSIGN_OR_RETURN(const std::vector<uint8_t> payload,
                        Call(kGetVringBase, EncodeVringState({index, 0}),
                             static_cast<int64_t>(kVringStateSize)));
  VRPC_ASSIGN_OR_RETURN(const VringState state, ParseVringState(payload));
  if (state.index != index) {
    return BadReply(kGetVringBase, absl::StrCat("for ring ", state.index, ", asked ", index));
  }
  if (state.num > 0xffff) {
    return BadReply(kGetVringBase, absl::StrCat("index ", state.num, " > 65535"));
  }
  return static_cast<uint16_t>(state.num);
}

absl::StatusOr<std::vector<uint8_t>> Frontend::GetConfig(uint32_t offset, uint32_t size) {
  if (size > kMaxConfigSize) {
    return absl::InvalidArgumentError(absl::StrCat("config read of ", size, " bytes"));
  }
  VRPC_ASSIGN_OR_RETURN(
      const std::vector<uint8_t> payload,
      Call(kGetConfig, EncodeConfig(offset, 0, std::vector<uint8_t>(size)), -1));
  if (payload.empty()) {
    return absl::UnavailableError("the vhost-user backend refused GET_CONFIG");
  }
  VRPC_ASSIGN_OR_RETURN(ConfigAccess access, ParseConfig(payload));
  if (access.offset != offset || access.size != size) {
    return BadReply(kGetConfig, absl::StrCat("for [", access.offset, ", +", access.size,
                                             "), asked [", offset, ", +", size, ")"));
  }
  return std::move(access.payload);
}

absl::Status Frontend::CheckUnsolicited() {
  VRPC_ASSIGN_OR_RETURN(std::optional<Message> msg, connection_.Receive());
  if (!msg.has_value()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "unsolicited ", RequestName(msg->header.request), " from the vhost-user backend"));
}

}  // namespace vhost_user
}  // namespace vrpc
