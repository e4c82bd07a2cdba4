// File: core/rpc/frame.h
//
// The vrpc RPC framing (docs/wire_protocol.md, part 2): many concurrent
// calls multiplexed over one byte stream. Every frame is a 12-byte
// little-endian header and |length| payload bytes:
//
//   0       4      5      6          8           12
//   | length | type | flags | reserved | stream_id | payload ...
//
// This file is pure: value types, the header codec and the payload codecs
// of the control frames. Bytes come and go as SliceChains, so a message
// payload is a view of the transport's buffers (zero copy).
#ifndef VRPC_CORE_RPC_FRAME_H_
#define VRPC_CORE_RPC_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/buffer/slice.h"

namespace vrpc {
namespace rpc {

inline constexpr size_t kFrameHeaderSize = 12;

// A payload of up to this many bytes is sent copied in right behind its
// frame header (Session::Emit), so the frames of a small call lie in one
// piece of memory. Whoever produces such a payload (Serialize) gains
// nothing from putting it in the transport's memory.
inline constexpr size_t kInlinePayloadBytes = 256;

enum class FrameType : uint8_t {
  kSettings = 1,      // stream 0; each side's limits, sent first
  kHeaders = 2,       // client: opens a call (method, timeout, metadata);
                      // server: the call's initial metadata
  kMessage = 3,       // one whole message
  kHalfClose = 4,     // client: no more messages on this call
  kTrailers = 5,      // server: status and trailing metadata; ends the call
  kCancel = 6,        // either side: abandons the call (status inside)
  kWindowUpdate = 7,  // per-stream flow control: more message bytes allowed
  kPing = 8,          // stream 0; 8 opaque bytes, answered with kFlagAck
  kGoAway = 9,        // stream 0; no new calls beyond last_stream_id
};

// Flags.
inline constexpr uint8_t kFlagAck = 0x1;  // kPing: this is the answer

const char* FrameTypeName(uint8_t type);

struct FrameHeader {
  uint32_t length = 0;
  uint8_t type = 0;  // raw: a peer may send values we do not know
  uint8_t flags = 0;
  uint16_t reserved = 0;
  uint32_t stream_id = 0;
};

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]);
FrameHeader DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]);

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Settings identifiers (u16 id, u32 value pairs in a kSettings payload).
enum class SettingId : uint16_t {
  kMaxMessageSize = 1,        // largest message the sender accepts
  kInitialWindow = 2,         // per-stream message bytes before WINDOW_UPDATE
  kMaxConcurrentStreams = 3,  // calls the sender serves at once
};

struct Settings {
  uint32_t max_message_size = 4 << 20;
  uint32_t initial_window = 1 << 20;
  uint32_t max_concurrent_streams = 1024;
};

struct RequestHeaders {
  std::string method;          // "/package.Service/Method"
  absl::Duration timeout = absl::InfiniteDuration();  // relative deadline
  Metadata metadata;
};

struct CallStatus {
  absl::StatusCode code = absl::StatusCode::kOk;  // numerically gRPC's codes
  std::string message;
  Metadata metadata;  // trailers only
};

struct GoAway {
  uint32_t last_stream_id = 0;
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;
};

// Limits a decoder applies to control payloads, before allocating.
struct PayloadLimits {
  size_t max_metadata_bytes = 16 * 1024;  // keys + values of one block
  size_t max_metadata_entries = 256;
  size_t max_string = 16 * 1024;          // method, status message
};

// Collects a control payload in an inline buffer (the heap only past
// 256 bytes): the session copies it behind its frame header without an
// allocation of its own.
class PayloadWriter {
 public:
  void U16(uint16_t v);
  void U32(uint32_t v);
  void Varint(uint64_t v);
  void String(const std::string& s);
  void Meta(const Metadata& m);
  absl::Span<const uint8_t> bytes() const { return absl::MakeConstSpan(out_); }
  // The bytes as one owned Slice (empty chain when there are none).
  SliceChain Take() const;

 private:
  void Append(const uint8_t* p, size_t n) { out_.insert(out_.end(), p, p + n); }

  absl::InlinedVector<uint8_t, 256> out_;
};

// Payload codecs. Encoders append to a PayloadWriter, or return the bytes;
// decoders reject malformed or over-limit input with kInvalidArgument /
// kResourceExhausted and never read past |in|.
void EncodeSettings(const Settings& s, PayloadWriter& w);
void EncodeRequestHeaders(const RequestHeaders& h, PayloadWriter& w);
void EncodeMetadata(const Metadata& m, PayloadWriter& w);
void EncodeStatus(const CallStatus& s, PayloadWriter& w);
void EncodeWindowUpdate(uint32_t increment, PayloadWriter& w);
void EncodeGoAway(const GoAway& g, PayloadWriter& w);

SliceChain EncodeSettings(const Settings& s);
absl::StatusOr<Settings> DecodeSettings(const SliceChain& in, const Settings& defaults);

SliceChain EncodeRequestHeaders(const RequestHeaders& h);
absl::StatusOr<RequestHeaders> DecodeRequestHeaders(const SliceChain& in,
                                                    const PayloadLimits& limits);

SliceChain EncodeMetadata(const Metadata& m);  // server kHeaders
absl::StatusOr<Metadata> DecodeMetadata(const SliceChain& in, const PayloadLimits& limits);

// kTrailers and kCancel.
SliceChain EncodeStatus(const CallStatus& s);
absl::StatusOr<CallStatus> DecodeStatus(const SliceChain& in, const PayloadLimits& limits);

SliceChain EncodeWindowUpdate(uint32_t increment);
absl::StatusOr<uint32_t> DecodeWindowUpdate(const SliceChain& in);

SliceChain EncodeGoAway(const GoAway& g);
absl::StatusOr<GoAway> DecodeGoAway(const SliceChain& in, const PayloadLimits& limits);

// A status code received from a peer, mapped into absl's range (UNKNOWN for
// values gRPC does not define).
absl::StatusCode CodeFromWire(uint64_t code);

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_FRAME_H_
