#include "transport_vsock/vhost_user/backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_macros.h"

namespace vrpc {
namespace vhost_user {

namespace {

absl::Status NoFdsExpected(const Message& msg) {
  if (!msg.fds.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(RequestName(msg.header.request), " carries ",
                     msg.fds.size(), " unexpected descriptor(s)"));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t Backend::OfferedProtocolFeatures(const BackendOptions& options) {
  uint64_t features = kProtocolMq | kProtocolReplyAck | kProtocolConfig;
  if (options.offer_configure_mem_slots) features |= kProtocolConfigureMemSlots;
  return features;
}

Backend::Backend(DeviceHooks* device, BackendOptions options)
    : device_(device),
      options_(options),
      num_queues_(device != nullptr ? device->NumQueues() : 0) {
  VRPC_CHECK(device_ != nullptr) << "Backend needs a device";
  VRPC_CHECK(num_queues_ >= 1 && num_queues_ <= kMaxQueues)
      << "device NumQueues() " << num_queues_ << " outside 1.." << kMaxQueues;
  VRPC_CHECK(options_.max_messages_per_call >= 1);
  rings_.resize(num_queues_);
}

Backend::~Backend() { Disconnect(); }

int Backend::socket_fd() const {
  return connection_ != nullptr ? connection_->fd() : -1;
}

bool Backend::ring_started(uint32_t index) const {
  return index < rings_.size() && rings_[index].started;
}

bool Backend::ring_enabled(uint32_t index) const {
  if (index >= rings_.size()) return false;
  return ProtocolNegotiated() ? rings_[index].enable_flag : true;
}

uint64_t Backend::OfferedFeatures() const {
  return device_->Features() | kFeatureProtocolFeatures;
}

bool Backend::ProtocolNegotiated() const {
  return (acked_features_ & kFeatureProtocolFeatures) != 0;
}

absl::Status Backend::Attach(UniqueFd socket) {
  if (connection_ != nullptr) {
    return absl::FailedPreconditionError(
        "a vhost-user frontend is already attached");
  }
  if (!socket.valid()) return absl::InvalidArgumentError("invalid socket");
  connection_ = std::make_unique<Connection>(std::move(socket),
                                             options_.io_timeout);
  session_ended_ = false;
  ++stats_.sessions;
  return absl::OkStatus();
}

void Backend::Disconnect() {
  if (connection_ == nullptr) return;
  if (!session_ended_) EndSession();
  connection_.reset();
  session_ended_ = false;
}

void Backend::EndSession() {
  for (uint32_t i = 0; i < num_queues_; ++i) {
    if (rings_[i].started) (void)StopRing(i);
  }
  device_->OnReset();
  // Drop every descriptor and mapping this session holds.
  rings_.assign(num_queues_, Ring());
  memory_.reset();
  acked_features_ = 0;
  features_set_ = false;
  acked_protocol_features_ = 0;
  session_ended_ = true;
}

absl::Status Backend::Fail(absl::Status status) {
  if (status.code() == absl::StatusCode::kUnavailable) {
    VRPC_LOG(INFO) << "vhost-user frontend disconnected";
  } else {
    ++stats_.violations;
    VRPC_LOG(WARNING) << "vhost-user session ended: " << status;
  }
  EndSession();
  return status;
}

absl::Status Backend::HandleReadable() {
  if (connection_ == nullptr) {
    return absl::FailedPreconditionError("no vhost-user frontend attached");
  }
  if (session_ended_) {
    return absl::FailedPreconditionError(
        "vhost-user session ended; call Disconnect()");
  }
  for (int i = 0; i < options_.max_messages_per_call; ++i) {
    absl::StatusOr<std::optional<Message>> msg = connection_->Receive();
    if (!msg.ok()) return Fail(msg.status());
    if (!msg->has_value()) return absl::OkStatus();
    if (absl::Status s = Dispatch(**msg); !s.ok()) return Fail(s);
    // The message (and any descriptor a handler did not keep) dies here.
  }
  return absl::OkStatus();
}

bool Backend::Supported(uint32_t request) const {
  switch (request) {
    case kGetFeatures: case kSetFeatures: case kSetOwner: case kResetOwner:
    case kSetMemTable: case kSetVringNum: case kSetVringAddr:
    case kSetVringBase: case kGetVringBase: case kSetVringKick:
    case kSetVringCall: case kSetVringErr: case kGetProtocolFeatures:
    case kSetProtocolFeatures: case kGetQueueNum:
      return true;
    case kSetVringEnable:
      return ProtocolNegotiated();
    case kGetConfig: case kSetConfig:
      return (acked_protocol_features_ & kProtocolConfig) != 0;
    case kGetMaxMemSlots: case kAddMemReg: case kRemMemReg:
      return (acked_protocol_features_ & kProtocolConfigureMemSlots) != 0;
    default:
      return false;
  }
}

absl::Status Backend::Dispatch(Message& msg) {
  ++stats_.messages;
  const MessageHeader& header = msg.header;
  VRPC_RETURN_IF_ERROR(CheckRequestHeader(header));
  const bool reply_ack = (acked_protocol_features_ & kProtocolReplyAck) != 0;
  const bool ack = reply_ack && msg.need_reply() &&
                   !RequestHasReply(header.request);
  if (!Supported(header.request)) {
    // Its descriptors are closed with |msg|.
    if (ack) {
      ++stats_.refused;
      VRPC_LOG(WARNING) << "vhost-user: refusing unsupported request "
                        << RequestName(header.request);
      return SendReply(header.request, EncodeU64(1));
    }
    return absl::UnimplementedError(absl::StrCat(
        "unsupported vhost-user request ", RequestName(header.request)));
  }
  const absl::Status size = CheckRequestSize(header.request, header.size);
  absl::StatusOr<uint64_t> result =
      size.ok() ? Handle(msg) : absl::StatusOr<uint64_t>(size);
  if (!result.ok()) {
    if (ack) (void)SendReply(header.request, EncodeU64(1));  // best effort
    return result.status();
  }
  if (*result != 0) ++stats_.refused;
  if (ack) return SendReply(header.request, EncodeU64(*result));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Backend::Handle(Message& msg) {
  switch (msg.header.request) {
    case kSetMemTable: return HandleSetMemTable(msg);
    case kAddMemReg: return HandleAddMemReg(msg);
    case kRemMemReg: return HandleRemMemReg(msg);
    case kSetVringKick: case kSetVringCall: case kSetVringErr:
      return HandleSetVringFd(msg);
    default: break;
  }
  VRPC_RETURN_IF_ERROR(NoFdsExpected(msg));
  switch (msg.header.request) {
    case kGetFeatures: return HandleGetU64(msg, OfferedFeatures());
    case kSetFeatures: return HandleSetFeatures(msg);
    case kSetOwner: return 0;
    case kResetOwner: return HandleResetOwner();
    case kSetVringNum: return HandleSetVringNum(msg);
    case kSetVringAddr: return HandleSetVringAddr(msg);
    case kSetVringBase: return HandleSetVringBase(msg);
    case kGetVringBase: return HandleGetVringBase(msg);
    case kGetProtocolFeatures:
      return HandleGetU64(msg, OfferedProtocolFeatures(options_));
    case kSetProtocolFeatures: return HandleSetProtocolFeatures(msg);
    case kGetQueueNum: return HandleGetU64(msg, num_queues_);
    case kSetVringEnable: return HandleSetVringEnable(msg);
    case kGetConfig: return HandleGetConfig(msg);
    case kSetConfig: return HandleSetConfig(msg);
    case kGetMaxMemSlots: return HandleGetU64(msg, options_.max_mem_slots);
    default:
      // Supported() and this switch disagree: our bug, not the frontend's.
      return absl::InternalError(absl::StrCat(
          "no handler for ", RequestName(msg.header.request)));
  }
}

absl::Status Backend::SendReply(uint32_t request,
                                absl::Span<const uint8_t> payload) {
  MessageHeader header;
  header.request = request;
  header.flags = kReplyFlags;
  header.size = static_cast<uint32_t>(payload.size());
  VRPC_RETURN_IF_ERROR(connection_->Send(header, payload));
  ++stats_.replies;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Features and ownership
// ---------------------------------------------------------------------------

absl::StatusOr<uint64_t> Backend::HandleGetU64(const Message& msg,
                                               uint64_t value) {
  VRPC_RETURN_IF_ERROR(SendReply(msg.header.request, EncodeU64(value)));
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetFeatures(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const uint64_t features, ParseU64(msg.payload));
  const uint64_t offered = OfferedFeatures();
  if ((features & ~offered) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SET_FEATURES acks 0x", absl::Hex(features & ~offered),
        " which was not offered"));
  }
  for (const Ring& ring : rings_) {
    if (ring.started && features != acked_features_) {
      return absl::FailedPreconditionError(
          "SET_FEATURES changes features while a ring is started");
    }
  }
  VRPC_RETURN_IF_ERROR(device_->OnFeaturesAcked(features));
  acked_features_ = features;
  features_set_ = true;
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleSetProtocolFeatures(const Message& msg) {
  VRPC_ASSIGN_OR_RETURN(const uint64_t features, ParseU64(msg.payload));
  const uint64_t offered = OfferedProtocolFeatures(options_);
  if ((features & ~offered) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SET_PROTOCOL_FEATURES acks 0x", absl::Hex(features & ~offered),
        " which was not offered"));
  }
  acked_protocol_features_ = features;
  return 0;
}

absl::StatusOr<uint64_t> Backend::HandleResetOwner() {
  // Deprecated; vhost-user.rst recommends ignoring it or disabling all
  // rings. We stop and disable them, keeping memory and features.
  for (uint32_t i = 0; i < num_queues_; ++i) {
    if (rings_[i].started) rings_[i].base = StopRing(i);
    rings_[i].kick.reset();
    rings_[i].kicked = false;
    rings_[i].enable_flag = false;
  }
  return 0;
}

}  // namespace vhost_user
}  // namespace vrpc
