#include "core/rpc/session.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace rpc {
namespace {

constexpr size_t kMaxControlFrame = 64 * 1024;
constexpr int64_t kMaxWindow = int64_t{1} << 31;
constexpr uint32_t kLastStreamId = 0x7fffffffu;

bool IsCallFrame(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHeaders:
    case FrameType::kMessage:
    case FrameType::kHalfClose:
    case FrameType::kTrailers:
    case FrameType::kCancel:
    case FrameType::kWindowUpdate:
      return true;
    default:
      return false;
  }
}

// Events are built in place at the end of |out|: a SessionEvent is large
// (headers, metadata, status, message), and moving one costs more than most
// of the work that fills it.
SessionEvent& NewEvent(SessionOutput& out, SessionEventType type) {
  SessionEvent& e = out.events.emplace_back();
  e.type = type;
  return e;
}

}  // namespace

Session::Session(Role role, const SessionOptions& options, SessionOutput& out)
    : role_(role),
      options_(options),
      decoder_(FrameDecoder::Limits{options.local.max_message_size,
                                    static_cast<uint32_t>(kMaxControlFrame)}) {
  EmitControl(FrameType::kSettings, 0, [&](PayloadWriter& w) { EncodeSettings(options_.local, w); },
              out);
}

uint8_t* Session::EmitHeader(FrameType type, uint32_t stream, size_t length, size_t inline_bytes,
                             SessionOutput& out, uint8_t flags) {
  FrameHeader h;
  h.length = static_cast<uint32_t>(length);
  h.type = static_cast<uint8_t>(type);
  h.flags = flags;
  h.stream_id = stream;
  // Frame headers are cut from a shared block: a reference count per frame
  // instead of an allocation. The block lives while any of its headers does.
  // A small payload is copied in behind its header, so the frames of a turn
  // (a unary call's HEADERS, MESSAGE and HALF_CLOSE) lie back to back in one
  // piece of memory: one Slice for the transport, one descriptor and one
  // bounce for the driver, instead of one per header and payload.
  const size_t need = kFrameHeaderSize + inline_bytes;
  if (header_raw_ == nullptr || kHeaderBlockSize - header_used_ < need) {
    header_block_ = Slice::Allocate(kHeaderBlockSize, &header_raw_);
    header_used_ = 0;
  }
  uint8_t* at = header_raw_ + header_used_;
  EncodeFrameHeader(h, at);
  out.bytes.Append(header_block_.Sub(header_used_, need));
  header_used_ += need;
  ++stats_.frames_out;
  return at + kFrameHeaderSize;
}

void Session::Emit(FrameType type, uint32_t stream, SliceChain&& payload, SessionOutput& out,
                   uint8_t flags) {
  const size_t size = payload.size();
  if (size <= kInlinePayload) {
    uint8_t* to = EmitHeader(type, stream, size, size, out, flags);
    payload.CopyTo(absl::MakeSpan(to, size));
    payload.Clear();  // the copy is what goes out
    return;
  }
  EmitHeader(type, stream, size, 0, out, flags);
  out.bytes.Append(std::move(payload));
}

void Session::EmitControl(FrameType type, uint32_t stream,
                          absl::FunctionRef<void(PayloadWriter&)> encode, SessionOutput& out) {
  PayloadWriter payload;
  encode(payload);
  const absl::Span<const uint8_t> bytes = payload.bytes();
  if (bytes.size() <= kInlinePayload) {
    uint8_t* to = EmitHeader(type, stream, bytes.size(), bytes.size(), out, /*flags=*/0);
    if (!bytes.empty()) std::memcpy(to, bytes.data(), bytes.size());
    return;
  }
  EmitHeader(type, stream, bytes.size(), 0, out, /*flags=*/0);
  out.bytes.Append(payload.Take());
}

Session::Stream* Session::Find(uint32_t stream) {
  if (found_ != nullptr && found_id_ == stream) return found_;
  auto it = streams_.find(stream);
  if (it == streams_.end()) return nullptr;
  found_id_ = stream;
  found_ = &it->second;
  return found_;
}

absl::Status Session::ConnectionError(absl::Status why, SessionOutput& out) {
  if (!error_.ok()) return error_;
  if (!goaway_sent_) {
    goaway_sent_ = true;
    EmitControl(FrameType::kGoAway, 0, [&](PayloadWriter& w) {
      EncodeGoAway(GoAway{last_peer_stream_, why.code(), std::string(why.message())}, w);
    }, out);
  }
  Abort(why, out);
  return why;
}

void Session::Abort(const absl::Status& why, SessionOutput& out) {
  if (error_.ok()) error_ = why.ok() ? absl::UnavailableError("aborted") : why;
  std::vector<uint32_t> open;
  for (const auto& [id, s] : streams_) open.push_back(id);
  std::sort(open.begin(), open.end());
  for (uint32_t id : open) {
    EndStream(id, role_ == Role::kClient ? SessionEventType::kFinished : SessionEventType::kCancelled,
              CallStatus{absl::StatusCode::kUnavailable,
                         absl::StrCat("connection lost: ", why.message()), {}},
              out);
  }
}

void Session::EndStream(uint32_t stream, SessionEventType type, CallStatus status,
                        SessionOutput& out) {
  found_ = nullptr;
  if (streams_.erase(stream) == 0) return;
  SessionEvent& e = NewEvent(out, type);
  e.stream = stream;
  e.status = std::move(status);
}

absl::Status Session::OnBytes(SliceChain bytes, SessionOutput& out) {
  if (!error_.ok()) return error_;
  decoder_.Feed(std::move(bytes));
  Frame frame;
  while (true) {
    absl::StatusOr<bool> got = decoder_.NextInto(&frame);
    if (!got.ok()) return ConnectionError(got.status(), out);
    if (!*got) return absl::OkStatus();
    ++stats_.frames_in;
    if (absl::Status s = HandleFrame(frame, out); !s.ok()) return ConnectionError(s, out);
  }
}

absl::Status Session::HandleFrame(Frame& f, SessionOutput& out) {
  const FrameHeader& h = f.header;
  if (IsCallFrame(h.type) && h.stream_id == 0) {
    return absl::InvalidArgumentError(absl::StrCat(FrameTypeName(h.type), " on stream 0"));
  }
  switch (static_cast<FrameType>(h.type)) {
    case FrameType::kSettings:
      return HandleSettings(f, out);
    case FrameType::kHeaders:
      return HandleHeaders(f, out);
    case FrameType::kMessage:
      return HandleMessage(f, out);
    case FrameType::kHalfClose: {
      if (role_ != Role::kServer) return absl::InvalidArgumentError("HALF_CLOSE sent to a client");
      Stream* s = Find(h.stream_id);
      if (s == nullptr || s->remote_half_closed) return absl::OkStatus();  // cancelled meanwhile
      s->remote_half_closed = true;
      SessionEvent& e = NewEvent(out, SessionEventType::kHalfClosed);
      e.stream = h.stream_id;
      return absl::OkStatus();
    }
    case FrameType::kTrailers:
    case FrameType::kCancel:
      return HandleEnd(f, out);
    case FrameType::kWindowUpdate: {
      absl::StatusOr<uint32_t> inc = DecodeWindowUpdate(f.payload);
      if (!inc.ok()) return inc.status();
      Stream* s = Find(h.stream_id);
      if (s == nullptr) return absl::OkStatus();
      s->send_window += *inc;
      if (s->send_window > kMaxWindow) return absl::InvalidArgumentError("window overflow");
      if (s->blocked && s->send_window > 0 && !output_backlogged_) {
        s->blocked = false;
        SessionEvent& e = NewEvent(out, SessionEventType::kWritable);
        e.stream = h.stream_id;
      }
      return absl::OkStatus();
    }
    case FrameType::kPing: {
      if (h.stream_id != 0 || f.payload.size() != 8) {
        return absl::InvalidArgumentError("PING must carry 8 bytes on stream 0");
      }
      uint8_t raw[8];
      f.payload.CopyTo(absl::MakeSpan(raw));
      if (h.flags & kFlagAck) {
        SessionEvent& e = NewEvent(out, SessionEventType::kPingAck);
        for (int i = 0; i < 8; ++i) e.ping |= uint64_t{raw[i]} << (8 * i);
      } else {
        Emit(FrameType::kPing, 0, std::move(f.payload), out, kFlagAck);
      }
      return absl::OkStatus();
    }
    case FrameType::kGoAway: {
      if (h.stream_id != 0) return absl::InvalidArgumentError("GOAWAY on a stream");
      absl::StatusOr<GoAway> g = DecodeGoAway(f.payload, options_.limits);
      if (!g.ok()) return g.status();
      goaway_received_ = true;
      goaway_last_stream_ = std::min(goaway_last_stream_, g->last_stream_id);
      if (role_ == Role::kClient) {
        // Calls the server never saw may be retried elsewhere.
        std::vector<uint32_t> unseen;
        for (const auto& [id, s] : streams_) {
          if (id > goaway_last_stream_) unseen.push_back(id);
        }
        std::sort(unseen.begin(), unseen.end());
        for (uint32_t id : unseen) {
          EndStream(id, SessionEventType::kFinished,
                    CallStatus{absl::StatusCode::kUnavailable,
                               absl::StrCat("server going away: ", g->message), {}},
                    out);
        }
      }
      SessionEvent& e = NewEvent(out, SessionEventType::kGoAway);
      e.goaway = *std::move(g);
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();  // unknown frame types are ignored
  }
}

absl::Status Session::HandleSettings(const Frame& f, SessionOutput& out) {
  if (f.header.stream_id != 0) return absl::InvalidArgumentError("SETTINGS on a stream");
  absl::StatusOr<Settings> s = DecodeSettings(f.payload, Settings());
  if (!s.ok()) return s.status();
  // Streams opened before the peer's SETTINGS used its default window.
  const int64_t delta = int64_t{s->initial_window} - int64_t{peer_.initial_window};
  peer_ = *s;
  peer_settings_received_ = true;
  for (auto& [id, stream] : streams_) stream.send_window += delta;
  NewEvent(out, SessionEventType::kSettings);
  return absl::OkStatus();
}

absl::Status Session::HandleHeaders(Frame& f, SessionOutput& out) {
  const uint32_t id = f.header.stream_id;
  if (role_ == Role::kClient) {
    Stream* s = Find(id);
    if (s == nullptr) return absl::OkStatus();  // the call ended locally
    absl::StatusOr<Metadata> md = DecodeMetadata(f.payload, options_.limits);
    if (!md.ok()) return md.status();
    SessionEvent& e = NewEvent(out, SessionEventType::kInitialMetadata);
    e.stream = id;
    e.metadata = *std::move(md);
    return absl::OkStatus();
  }
  // Server: a new call. Ids are odd and increase.
  if (id % 2 == 0 || id <= last_peer_stream_) {
    return absl::InvalidArgumentError(
        absl::StrCat("HEADERS opens stream ", id, " after ", last_peer_stream_));
  }
  last_peer_stream_ = id;
  auto refuse = [&](absl::StatusCode code, std::string why) {
    const CallStatus status{code, std::move(why), {}};
    EmitControl(FrameType::kCancel, id, [&](PayloadWriter& w) { EncodeStatus(status, w); }, out);
    return absl::OkStatus();
  };
  if (goaway_sent_) return refuse(absl::StatusCode::kUnavailable, "server is shutting down");
  if (streams_.size() >= options_.local.max_concurrent_streams) {
    return refuse(absl::StatusCode::kResourceExhausted,
                  absl::StrCat("more than ", options_.local.max_concurrent_streams,
                               " concurrent calls"));
  }
  absl::StatusOr<RequestHeaders> headers = DecodeRequestHeaders(f.payload, options_.limits);
  if (!headers.ok()) {
    return refuse(headers.status().code() == absl::StatusCode::kResourceExhausted
                      ? absl::StatusCode::kResourceExhausted
                      : absl::StatusCode::kInvalidArgument,
                  std::string(headers.status().message()));
  }
  found_ = nullptr;
  Stream& s = streams_[id];
  s.send_window = peer_.initial_window;
  s.recv_window = options_.local.initial_window;
  stats_.open_streams = streams_.size();
  SessionEvent& e = NewEvent(out, SessionEventType::kCallStarted);
  e.stream = id;
  e.headers = *std::move(headers);
  return absl::OkStatus();
}

absl::Status Session::HandleMessage(Frame& f, SessionOutput& out) {
  const uint32_t id = f.header.stream_id;
  Stream* s = Find(id);
  if (f.oversized) {
    ++stats_.oversized_messages;
    if (s == nullptr) return absl::OkStatus();
    const CallStatus status{absl::StatusCode::kResourceExhausted,
                            absl::StrCat("message of ", f.header.length,
                                         " bytes over the limit of ",
                                         options_.local.max_message_size),
                            {}};
    EmitControl(FrameType::kCancel, id, [&](PayloadWriter& w) { EncodeStatus(status, w); }, out);
    EndStream(id, role_ == Role::kClient ? SessionEventType::kFinished : SessionEventType::kCancelled,
              status, out);
    return absl::OkStatus();
  }
  if (s == nullptr) return absl::OkStatus();  // ended locally; drop
  if (s->remote_half_closed) {
    return absl::InvalidArgumentError(absl::StrCat("MESSAGE after HALF_CLOSE on stream ", id));
  }
  if (s->recv_window <= 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("peer sent on stream ", id, " beyond its window"));
  }
  s->recv_window -= static_cast<int64_t>(f.payload.size());
  ++stats_.messages_in;
  SessionEvent& e = NewEvent(out, SessionEventType::kMessage);
  e.stream = id;
  e.message = std::move(f.payload);
  return absl::OkStatus();
}

absl::Status Session::HandleEnd(const Frame& f, SessionOutput& out) {
  const bool trailers = f.header.type == static_cast<uint8_t>(FrameType::kTrailers);
  if (trailers && role_ != Role::kClient) {
    return absl::InvalidArgumentError("TRAILERS sent to a server");
  }
  absl::StatusOr<CallStatus> status = DecodeStatus(f.payload, options_.limits);
  if (!status.ok()) return status.status();
  if (!trailers && status->code == absl::StatusCode::kOk) {
    status->code = absl::StatusCode::kCancelled;  // a CANCEL is never a success
  }
  EndStream(f.header.stream_id,
            role_ == Role::kClient ? SessionEventType::kFinished : SessionEventType::kCancelled,
            *std::move(status), out);
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> Session::StartCall(const RequestHeaders& headers, SessionOutput& out) {
  if (role_ != Role::kClient) return absl::FailedPreconditionError("StartCall on a server");
  if (!error_.ok()) return absl::UnavailableError(error_.message());
  if (goaway_received_) return absl::UnavailableError("server is going away");
  if (next_stream_ > kLastStreamId) return absl::UnavailableError("stream ids exhausted");
  if (streams_.size() >= peer_.max_concurrent_streams) {
    return absl::ResourceExhaustedError(
        absl::StrCat("server allows ", peer_.max_concurrent_streams, " concurrent calls"));
  }
  const uint32_t id = next_stream_;
  next_stream_ += 2;
  found_ = nullptr;
  Stream& s = streams_[id];
  s.send_window = peer_.initial_window;
  s.recv_window = options_.local.initial_window;
  stats_.open_streams = streams_.size();
  EmitControl(FrameType::kHeaders, id, [&](PayloadWriter& w) { EncodeRequestHeaders(headers, w); },
              out);
  return id;
}

absl::Status Session::HalfClose(uint32_t stream, SessionOutput& out) {
  Stream* s = Find(stream);
  if (role_ != Role::kClient || s == nullptr || s->local_half_closed) {
    return absl::FailedPreconditionError("no open call to half-close");
  }
  s->local_half_closed = true;
  Emit(FrameType::kHalfClose, stream, SliceChain(), out);
  return absl::OkStatus();
}

absl::Status Session::SendInitialMetadata(uint32_t stream, const Metadata& metadata,
                                          SessionOutput& out) {
  Stream* s = Find(stream);
  if (role_ != Role::kServer || s == nullptr) return absl::FailedPreconditionError("no such call");
  if (s->headers_sent) return absl::FailedPreconditionError("initial metadata already sent");
  s->headers_sent = true;
  EmitControl(FrameType::kHeaders, stream, [&](PayloadWriter& w) { EncodeMetadata(metadata, w); },
              out);
  return absl::OkStatus();
}

absl::Status Session::Finish(uint32_t stream, const CallStatus& status, SessionOutput& out) {
  if (role_ != Role::kServer || Find(stream) == nullptr) {
    return absl::FailedPreconditionError("no such call");
  }
  found_ = nullptr;
  streams_.erase(stream);
  stats_.open_streams = streams_.size();
  EmitControl(FrameType::kTrailers, stream, [&](PayloadWriter& w) { EncodeStatus(status, w); },
              out);
  return absl::OkStatus();
}

absl::Status Session::SendMessage(uint32_t stream, SliceChain message, SessionOutput& out) {
  Stream* s = Find(stream);
  if (s == nullptr || s->local_half_closed || !error_.ok()) {
    return absl::FailedPreconditionError("the call cannot send");
  }
  if (message.size() > peer_.max_message_size) {
    return absl::ResourceExhaustedError(absl::StrCat("message of ", message.size(),
                                                     " bytes over the peer's limit of ",
                                                     peer_.max_message_size));
  }
  if (s->send_window <= 0) {
    s->blocked = true;
    return absl::UnavailableError("window");
  }
  s->send_window -= static_cast<int64_t>(message.size());
  ++stats_.messages_out;
  Emit(FrameType::kMessage, stream, std::move(message), out);
  return absl::OkStatus();
}

bool Session::CanSend(uint32_t stream) const {
  auto it = streams_.find(stream);
  return it != streams_.end() && error_.ok() && !it->second.local_half_closed &&
         it->second.send_window > 0 && !output_backlogged_;
}

void Session::WantSend(uint32_t stream) {
  Stream* s = Find(stream);
  if (s != nullptr && (s->send_window <= 0 || output_backlogged_)) s->blocked = true;
}

void Session::SetOutputBacklogged(bool backlogged, SessionOutput& out) {
  if (output_backlogged_ == backlogged) return;
  output_backlogged_ = backlogged;
  if (backlogged || !error_.ok()) return;
  for (auto& [id, s] : streams_) {
    if (!s.blocked || s.send_window <= 0) continue;
    s.blocked = false;
    SessionEvent& e = NewEvent(out, SessionEventType::kWritable);
    e.stream = id;
  }
}

void Session::ConsumeMessage(uint32_t stream, size_t bytes, SessionOutput& out) {
  Stream* s = Find(stream);
  if (s == nullptr || !error_.ok()) return;
  s->consumed += bytes;
  if (s->consumed < options_.local.initial_window / 2) return;
  const uint32_t inc = static_cast<uint32_t>(
      std::min<uint64_t>(s->consumed, static_cast<uint64_t>(kMaxWindow) - 1));
  s->consumed -= inc;
  s->recv_window += inc;
  EmitControl(FrameType::kWindowUpdate, stream,
              [&](PayloadWriter& w) { EncodeWindowUpdate(inc, w); }, out);
}

void Session::Cancel(uint32_t stream, const CallStatus& status, SessionOutput& out) {
  found_ = nullptr;
  if (streams_.erase(stream) == 0) return;
  stats_.open_streams = streams_.size();
  if (!error_.ok()) return;
  EmitControl(FrameType::kCancel, stream, [&](PayloadWriter& w) { EncodeStatus(status, w); }, out);
}

void Session::Ping(uint64_t payload, SessionOutput& out) {
  if (!error_.ok()) return;
  EmitControl(FrameType::kPing, 0, [&](PayloadWriter& w) {  // le64
    w.U32(static_cast<uint32_t>(payload));
    w.U32(static_cast<uint32_t>(payload >> 32));
  }, out);
}

void Session::SendGoAway(absl::StatusCode code, const std::string& message, SessionOutput& out) {
  if (goaway_sent_ || !error_.ok()) return;
  goaway_sent_ = true;
  EmitControl(FrameType::kGoAway, 0, [&](PayloadWriter& w) {
    EncodeGoAway(GoAway{role_ == Role::kServer ? last_peer_stream_ : 0, code, message}, w);
  }, out);
}

}  // namespace rpc
}  // namespace vrpc
