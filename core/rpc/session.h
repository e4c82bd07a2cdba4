// File: core/rpc/session.h
//
// Session: one side of an RPC connection as a sans-I/O state machine, like
// the vsock engine one layer down. Bytes from the transport and calls from
// the application go in; bytes for the transport and call events come out
// through an Output sink. No threads, no clocks (deadlines are the runtime's
// job), no I/O: every rule of the framing (docs/wire_protocol.md, part 2) is
// here and testable with two sessions back to back.
//
// Streams. The client opens streams 1, 3, 5, ... with StartCall; each ends
// when the server's TRAILERS or either side's CANCEL passes. Per-stream flow
// control works at message granularity: a side may send a message while the
// peer's window for that stream is positive (it may go negative by one
// message), and grants more with WINDOW_UPDATE as its application consumes
// messages (ConsumeMessage). So the memory one stream can hold is bounded by
// window + one max-size message, and a stream whose reader stalls stops only
// itself.
//
// Errors. Peer mistakes that concern one stream (oversized message, frame for
// a stream in the wrong state) end that stream with a status; mistakes that
// break the framing (bad header, oversized control frame, undecodable
// payload, unknown stream ids going backwards) are connection errors:
// OnBytes returns the error after queueing a GOAWAY, and the runtime closes
// the transport.
//
// Not thread-safe.
#ifndef VRPC_CORE_RPC_SESSION_H_
#define VRPC_CORE_RPC_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/buffer/slice.h"
#include "core/rpc/frame.h"
#include "core/rpc/frame_decoder.h"

namespace vrpc {
namespace rpc {

enum class SessionEventType {
  // Server side.
  kCallStarted,    // stream, headers: a client opened a call
  kHalfClosed,     // stream: the client sends no more messages
  // Client side.
  kInitialMetadata,  // stream, metadata
  kFinished,         // stream, status (+ trailing metadata): the call ended
                     // (server TRAILERS, peer CANCEL, or a stream error)
  // Both.
  kMessage,        // stream, message (views of the transport's bytes)
  kWritable,       // stream: CanSend holds again (window reopened, output drained)
  kCancelled,      // server side: stream, status: the client cancelled
  kPingAck,        // payload: our PING came back
  kGoAway,         // goaway: the peer takes no calls beyond last_stream_id
  kSettings,       // the peer's settings arrived (peer_settings())
};

struct SessionEvent {
  SessionEventType type;
  uint32_t stream = 0;
  RequestHeaders headers;  // kCallStarted
  Metadata metadata;       // kInitialMetadata
  SliceChain message;      // kMessage
  CallStatus status;       // kFinished, kCancelled
  GoAway goaway;           // kGoAway
  uint64_t ping = 0;       // kPingAck
};

// What session calls produce, in order. The runtime writes |bytes| to the
// transport and delivers |events|, then Clear()s it.
struct SessionOutput {
  SliceChain bytes;
  std::vector<SessionEvent> events;
  bool empty() const { return bytes.empty() && events.empty(); }
  void Clear() {
    bytes.Clear();
    events.clear();
  }
};

struct SessionOptions {
  Settings local;        // what we accept, announced in our SETTINGS
  PayloadLimits limits;  // control payload limits
  // For the I/O edge (RpcConnection): output bytes waiting for transport
  // credit at which the session is told it is backlogged
  // (SetOutputBacklogged); it is told it drained at a quarter of this.
  size_t max_unsent_bytes = 256 * 1024;
};

struct SessionStats {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t oversized_messages = 0;  // rejected by our max message size
  size_t open_streams = 0;
};

class Session {
 public:
  enum class Role { kClient, kServer };

  // Queues our SETTINGS into |out| (the first frame on the wire).
  Session(Role role, const SessionOptions& options, SessionOutput& out);

  // ---- Transport input ----
  // Consumes stream bytes. A connection error is returned (a GOAWAY is
  // already queued); the session accepts nothing more afterwards.
  absl::Status OnBytes(SliceChain bytes, SessionOutput& out);

  // ---- Client calls ----
  // Opens a call. kResourceExhausted when the peer's concurrency limit is
  // reached, kUnavailable after GOAWAY or a connection error.
  absl::StatusOr<uint32_t> StartCall(const RequestHeaders& headers, SessionOutput& out);
  absl::Status HalfClose(uint32_t stream, SessionOutput& out);

  // ---- Server calls ----
  absl::Status SendInitialMetadata(uint32_t stream, const Metadata& metadata,
                                   SessionOutput& out);
  // Ends the call with TRAILERS.
  absl::Status Finish(uint32_t stream, const CallStatus& status, SessionOutput& out);

  // ---- Both ----
  // Sends one message. kResourceExhausted if it is over the peer's max
  // message size (nothing is sent; the call may continue);
  // kUnavailable("window") while the peer's window is not positive (retry
  // after kWritable); kFailedPrecondition if the stream cannot send.
  absl::Status SendMessage(uint32_t stream, SliceChain message, SessionOutput& out);
  // Whether the application should send a message on |stream| now: its
  // window is positive and the output is not backlogged (below).
  bool CanSend(uint32_t stream) const;
  // Asks for kWritable on |stream| once CanSend holds again (after it said
  // no): its window reopened and the output is not backlogged.
  void WantSend(uint32_t stream);
  // The I/O edge says whether bytes this session produced still wait for
  // the transport beyond its limit. While they do, CanSend is false for
  // every stream, so the memory held for sending is bounded by that limit
  // plus one message per stream, not by the peer's windows; clearing it
  // emits kWritable for the streams that asked (WantSend). Control frames
  // (headers, trailers, window updates) are never held back. SendMessage
  // itself still checks only the window.
  void SetOutputBacklogged(bool backlogged, SessionOutput& out);
  bool output_backlogged() const { return output_backlogged_; }
  // The application consumed |bytes| of received messages on |stream|:
  // grants the peer a WINDOW_UPDATE when half the window is used.
  void ConsumeMessage(uint32_t stream, size_t bytes, SessionOutput& out);
  // Abandons a call with CANCEL(status). Unknown or ended streams: no-op.
  void Cancel(uint32_t stream, const CallStatus& status, SessionOutput& out);
  void Ping(uint64_t payload, SessionOutput& out);
  // Graceful shutdown: GOAWAY with the last stream we serve (server: the
  // highest started; client: 0). New calls are refused afterwards.
  void SendGoAway(absl::StatusCode code, const std::string& message, SessionOutput& out);

  // The transport is gone: every open call ends (kFinished / kCancelled with
  // UNAVAILABLE), nothing is sent, and the session accepts nothing more.
  void Abort(const absl::Status& why, SessionOutput& out);

  bool IsOpen(uint32_t stream) const { return streams_.contains(stream); }
  size_t open_streams() const { return streams_.size(); }
  bool goaway_received() const { return goaway_received_; }
  const Settings& peer_settings() const { return peer_; }
  // True once the peer's SETTINGS arrived (peer_settings() are its own, not
  // the defaults).
  bool peer_settings_received() const { return peer_settings_received_; }
  const SessionStats& stats() const { return stats_; }
  absl::Status error() const { return error_; }

 private:
  struct Stream {
    int64_t send_window = 0;     // peer's window for our messages
    int64_t recv_window = 0;     // our window for the peer's messages
    uint64_t consumed = 0;       // consumed since the last WINDOW_UPDATE
    bool local_half_closed = false;
    bool remote_half_closed = false;
    bool headers_sent = false;   // server: initial metadata sent
    bool blocked = false;        // wants kWritable (WantSend)
  };

  // Queues a frame header for a payload of |length| bytes, with room for
  // |inline_bytes| of it right behind, and returns where those go.
  uint8_t* EmitHeader(FrameType type, uint32_t stream, size_t length, size_t inline_bytes,
                      SessionOutput& out, uint8_t flags);
  // A frame with |payload| (messages, pings: views kept unless small).
  void Emit(FrameType type, uint32_t stream, SliceChain&& payload, SessionOutput& out,
            uint8_t flags = 0);
  // A control frame whose payload |encode| writes: copied in behind its
  // header, no allocation unless it is large.
  void EmitControl(FrameType type, uint32_t stream,
                   absl::FunctionRef<void(PayloadWriter&)> encode, SessionOutput& out);
  absl::Status ConnectionError(absl::Status why, SessionOutput& out);
  absl::Status HandleFrame(Frame& frame, SessionOutput& out);
  absl::Status HandleSettings(const Frame& f, SessionOutput& out);
  absl::Status HandleHeaders(Frame& f, SessionOutput& out);
  absl::Status HandleMessage(Frame& f, SessionOutput& out);
  absl::Status HandleEnd(const Frame& f, SessionOutput& out);
  // Ends |stream| (removes it) and reports kFinished / kCancelled.
  void EndStream(uint32_t stream, SessionEventType type, CallStatus status, SessionOutput& out);
  Stream* Find(uint32_t stream);

  const Role role_;
  const SessionOptions options_;
  Settings peer_;  // defaults until the peer's SETTINGS arrives
  FrameDecoder decoder_;
  absl::flat_hash_map<uint32_t, Stream> streams_;
  // Find's last answer; any insert or erase may move the map's slots, so
  // both clear it (streams_ is changed nowhere else).
  uint32_t found_id_ = 0;
  Stream* found_ = nullptr;
  uint32_t next_stream_ = 1;     // client: next id to open
  uint32_t last_peer_stream_ = 0;  // server: highest id the client opened
  bool goaway_sent_ = false;
  bool goaway_received_ = false;
  uint32_t goaway_last_stream_ = 0xffffffffu;
  bool output_backlogged_ = false;
  bool peer_settings_received_ = false;
  absl::Status error_;
  SessionStats stats_;
  // Emit's frame headers: the current block, where to write, how much is used.
  static constexpr size_t kHeaderBlockSize = 2048;
  // Payloads up to this size are copied into the block behind their header.
  static constexpr size_t kInlinePayload = kInlinePayloadBytes;
  Slice header_block_;
  uint8_t* header_raw_ = nullptr;
  size_t header_used_ = 0;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_SESSION_H_
