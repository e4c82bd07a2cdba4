#include "core/rpc/frame.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"

namespace vrpc {
namespace rpc {
namespace {

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// Reads a payload, flattened only when it spans several slices; every read
// is bounds-checked. |in| must outlive the reader.
class Reader {
 public:
  explicit Reader(const SliceChain& in) {
    if (in.slices().size() == 1) {
      const Slice& only = in.slices()[0];
      data_ = absl::string_view(reinterpret_cast<const char*>(only.data()), only.size());
    } else {
      flat_ = in.ToString();
      data_ = flat_;
    }
  }
  bool done() const { return pos_ == data_.size(); }
  size_t left() const { return data_.size() - pos_; }

  absl::Status U16(uint16_t* v) {
    if (left() < 2) return Truncated();
    *v = Get16(bytes() + pos_);
    pos_ += 2;
    return absl::OkStatus();
  }
  absl::Status U32(uint32_t* v) {
    if (left() < 4) return Truncated();
    *v = Get32(bytes() + pos_);
    pos_ += 4;
    return absl::OkStatus();
  }
  absl::Status Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (left() < 1) return Truncated();
      const uint8_t b = bytes()[pos_++];
      if (shift == 63 && b > 1) break;  // overflows 64 bits
      result |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError("varint longer than 64 bits");
  }
  absl::Status String(size_t max, std::string* s) {
    uint64_t n = 0;
    if (absl::Status st = Varint(&n); !st.ok()) return st;
    if (n > max) {
      return absl::ResourceExhaustedError(absl::StrCat("string of ", n, " bytes over ", max));
    }
    if (n > left()) return Truncated();
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  absl::Status Meta(const PayloadLimits& limits, Metadata* m) {
    uint64_t count = 0;
    if (absl::Status st = Varint(&count); !st.ok()) return st;
    if (count > limits.max_metadata_entries) {
      return absl::ResourceExhaustedError(
          absl::StrCat(count, " metadata entries over ", limits.max_metadata_entries));
    }
    size_t total = 0;
    for (uint64_t i = 0; i < count; ++i) {
      std::string k, v;
      if (absl::Status st = String(limits.max_metadata_bytes, &k); !st.ok()) return st;
      if (absl::Status st = String(limits.max_metadata_bytes, &v); !st.ok()) return st;
      if (k.empty()) return absl::InvalidArgumentError("empty metadata key");
      total += k.size() + v.size();
      if (total > limits.max_metadata_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("metadata over ", limits.max_metadata_bytes, " bytes"));
      }
      m->emplace_back(std::move(k), std::move(v));
    }
    return absl::OkStatus();
  }
  absl::Status End() const {
    return done() ? absl::OkStatus()
                  : absl::InvalidArgumentError(absl::StrCat(left(), " trailing bytes"));
  }

 private:
  static absl::Status Truncated() { return absl::InvalidArgumentError("truncated payload"); }
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(data_.data()); }

  std::string flat_;       // a multi-slice payload, flattened
  absl::string_view data_;  // what is read: the single slice, or flat_
  size_t pos_ = 0;
};

}  // namespace

void PayloadWriter::U16(uint16_t v) {
  uint8_t b[2];
  Put16(b, v);
  Append(b, 2);
}

void PayloadWriter::U32(uint32_t v) {
  uint8_t b[4];
  Put32(b, v);
  Append(b, 4);
}

void PayloadWriter::Varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<uint8_t>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<uint8_t>(v));
}

void PayloadWriter::String(const std::string& s) {
  Varint(s.size());
  Append(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

void PayloadWriter::Meta(const Metadata& m) {
  Varint(m.size());
  for (const auto& [k, v] : m) {
    String(k);
    String(v);
  }
}

SliceChain PayloadWriter::Take() const {
  return out_.empty() ? SliceChain() : SliceChain(Slice::Copy(absl::MakeConstSpan(out_)));
}

const char* FrameTypeName(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kSettings: return "SETTINGS";
    case FrameType::kHeaders: return "HEADERS";
    case FrameType::kMessage: return "MESSAGE";
    case FrameType::kHalfClose: return "HALF_CLOSE";
    case FrameType::kTrailers: return "TRAILERS";
    case FrameType::kCancel: return "CANCEL";
    case FrameType::kWindowUpdate: return "WINDOW_UPDATE";
    case FrameType::kPing: return "PING";
    case FrameType::kGoAway: return "GOAWAY";
  }
  return "UNKNOWN";
}

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]) {
  Put32(out, h.length);
  out[4] = h.type;
  out[5] = h.flags;
  Put16(out + 6, h.reserved);
  Put32(out + 8, h.stream_id);
}

FrameHeader DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]) {
  FrameHeader h;
  h.length = Get32(in);
  h.type = in[4];
  h.flags = in[5];
  h.reserved = Get16(in + 6);
  h.stream_id = Get32(in + 8);
  return h;
}

absl::StatusCode CodeFromWire(uint64_t code) {
  if (code > static_cast<uint64_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(code);
}

void EncodeSettings(const Settings& s, PayloadWriter& w) {
  w.U16(static_cast<uint16_t>(SettingId::kMaxMessageSize));
  w.U32(s.max_message_size);
  w.U16(static_cast<uint16_t>(SettingId::kInitialWindow));
  w.U32(s.initial_window);
  w.U16(static_cast<uint16_t>(SettingId::kMaxConcurrentStreams));
  w.U32(s.max_concurrent_streams);
}

SliceChain EncodeSettings(const Settings& s) {
  PayloadWriter w;
  EncodeSettings(s, w);
  return w.Take();
}

absl::StatusOr<Settings> DecodeSettings(const SliceChain& in, const Settings& defaults) {
  if (in.size() % 6 != 0 || in.size() > 6 * 64) {
    return absl::InvalidArgumentError(absl::StrCat("SETTINGS payload of ", in.size(), " bytes"));
  }
  Reader r(in);
  Settings s = defaults;
  while (!r.done()) {
    uint16_t id = 0;
    uint32_t value = 0;
    VRPC_RETURN_IF_ERROR(r.U16(&id));
    VRPC_RETURN_IF_ERROR(r.U32(&value));
    switch (static_cast<SettingId>(id)) {
      case SettingId::kMaxMessageSize:
        s.max_message_size = value;
        break;
      case SettingId::kInitialWindow:
        if (value == 0) return absl::InvalidArgumentError("initial window 0");
        s.initial_window = value;
        break;
      case SettingId::kMaxConcurrentStreams:
        s.max_concurrent_streams = value;
        break;
      default:
        break;  // unknown settings are ignored (forward compatibility)
    }
  }
  return s;
}

void EncodeRequestHeaders(const RequestHeaders& h, PayloadWriter& w) {
  w.String(h.method);
  uint64_t timeout_us = 0;  // 0: none
  if (h.timeout != absl::InfiniteDuration()) {
    timeout_us = static_cast<uint64_t>(
        std::max<int64_t>(1, absl::ToInt64Microseconds(std::max(h.timeout, absl::ZeroDuration()))));
  }
  w.Varint(timeout_us);
  w.Meta(h.metadata);
}

SliceChain EncodeRequestHeaders(const RequestHeaders& h) {
  PayloadWriter w;
  EncodeRequestHeaders(h, w);
  return w.Take();
}

absl::StatusOr<RequestHeaders> DecodeRequestHeaders(const SliceChain& in,
                                                    const PayloadLimits& limits) {
  Reader r(in);
  RequestHeaders h;
  VRPC_RETURN_IF_ERROR(r.String(limits.max_string, &h.method));
  if (h.method.empty() || h.method[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("bad method \"", h.method, "\""));
  }
  uint64_t timeout_us = 0;
  VRPC_RETURN_IF_ERROR(r.Varint(&timeout_us));
  if (timeout_us != 0) {
    // Clamp absurd timeouts (above ~290 years) to "none".
    h.timeout = timeout_us > (uint64_t{1} << 53) ? absl::InfiniteDuration()
                                                 : absl::Microseconds(static_cast<int64_t>(timeout_us));
  }
  VRPC_RETURN_IF_ERROR(r.Meta(limits, &h.metadata));
  VRPC_RETURN_IF_ERROR(r.End());
  return h;
}

void EncodeMetadata(const Metadata& m, PayloadWriter& w) { w.Meta(m); }

SliceChain EncodeMetadata(const Metadata& m) {
  PayloadWriter w;
  EncodeMetadata(m, w);
  return w.Take();
}

absl::StatusOr<Metadata> DecodeMetadata(const SliceChain& in, const PayloadLimits& limits) {
  Reader r(in);
  Metadata m;
  VRPC_RETURN_IF_ERROR(r.Meta(limits, &m));
  VRPC_RETURN_IF_ERROR(r.End());
  return m;
}

void EncodeStatus(const CallStatus& s, PayloadWriter& w) {
  w.Varint(static_cast<uint64_t>(s.code));
  w.String(s.message);
  w.Meta(s.metadata);
}

SliceChain EncodeStatus(const CallStatus& s) {
  PayloadWriter w;
  EncodeStatus(s, w);
  return w.Take();
}

absl::StatusOr<CallStatus> DecodeStatus(const SliceChain& in, const PayloadLimits& limits) {
  Reader r(in);
  CallStatus s;
  uint64_t code = 0;
  VRPC_RETURN_IF_ERROR(r.Varint(&code));
  s.code = CodeFromWire(code);
  VRPC_RETURN_IF_ERROR(r.String(limits.max_string, &s.message));
  VRPC_RETURN_IF_ERROR(r.Meta(limits, &s.metadata));
  VRPC_RETURN_IF_ERROR(r.End());
  return s;
}

void EncodeWindowUpdate(uint32_t increment, PayloadWriter& w) { w.U32(increment); }

SliceChain EncodeWindowUpdate(uint32_t increment) {
  PayloadWriter w;
  EncodeWindowUpdate(increment, w);
  return w.Take();
}

absl::StatusOr<uint32_t> DecodeWindowUpdate(const SliceChain& in) {
  if (in.size() != 4) return absl::InvalidArgumentError("WINDOW_UPDATE payload is not 4 bytes");
  Reader r(in);
  uint32_t v = 0;
  VRPC_RETURN_IF_ERROR(r.U32(&v));
  if (v == 0) return absl::InvalidArgumentError("WINDOW_UPDATE of 0");
  return v;
}

void EncodeGoAway(const GoAway& g, PayloadWriter& w) {
  w.U32(g.last_stream_id);
  w.Varint(static_cast<uint64_t>(g.code));
  w.String(g.message);
}

SliceChain EncodeGoAway(const GoAway& g) {
  PayloadWriter w;
  EncodeGoAway(g, w);
  return w.Take();
}

absl::StatusOr<GoAway> DecodeGoAway(const SliceChain& in, const PayloadLimits& limits) {
  Reader r(in);
  GoAway g;
  VRPC_RETURN_IF_ERROR(r.U32(&g.last_stream_id));
  uint64_t code = 0;
  VRPC_RETURN_IF_ERROR(r.Varint(&code));
  g.code = CodeFromWire(code);
  VRPC_RETURN_IF_ERROR(r.String(limits.max_string, &g.message));
  VRPC_RETURN_IF_ERROR(r.End());
  return g;
}

}  // namespace rpc
}  // namespace vrpc
