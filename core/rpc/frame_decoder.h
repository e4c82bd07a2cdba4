// File: core/rpc/frame_decoder.h
//
// FrameDecoder: splits a byte stream into frames (frame.h) without copying
// payloads: a frame's payload is a SliceChain of views into the bytes fed.
//
// Limits are enforced from the header, before anything is buffered:
//   - a kMessage frame longer than max_message is returned at once with
//     |oversized| set and an empty payload, and its bytes are then skipped
//     as they arrive (never buffered), so the connection stays in sync and
//     only that call fails (RESOURCE_EXHAUSTED);
//   - any other frame longer than max_control, or with reserved bits set, is
//     a connection error.
// Frames of unknown type are returned as they are (the caller ignores them:
// forward compatibility). Buffered bytes never exceed 12 + the larger limit.
//
// Not thread-safe.
#ifndef VRPC_CORE_RPC_FRAME_DECODER_H_
#define VRPC_CORE_RPC_FRAME_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "core/buffer/slice.h"
#include "core/rpc/frame.h"

namespace vrpc {
namespace rpc {

struct Frame {
  FrameHeader header;
  SliceChain payload;
  bool oversized = false;  // kMessage over the limit: payload skipped
};

class FrameDecoder {
 public:
  struct Limits {
    uint32_t max_message = 4 << 20;
    uint32_t max_control = 64 * 1024;
  };

  explicit FrameDecoder(Limits limits) : limits_(limits) {}

  // Appends stream bytes (views are kept, not copied).
  void Feed(SliceChain bytes);

  // Decodes the next frame into |*frame| (overwritten) and returns true;
  // false when more bytes are needed. After an error the decoder stays
  // failed (the connection must be closed). The session's path: no
  // temporaries to move the payload through.
  absl::StatusOr<bool> NextInto(Frame* frame);
  // NextInto as a value: nullopt when more bytes are needed.
  absl::StatusOr<std::optional<Frame>> Next();

  // Bytes held, waiting for the rest of a frame.
  size_t buffered() const { return buffer_.size(); }
  // Bytes of oversized messages skipped so far.
  uint64_t skipped() const { return skipped_; }

 private:
  // The common case: the next frame lies whole in the first buffered slice
  // and breaks no limit. Takes it with one slice operation and returns
  // true; false leaves everything to the general path.
  bool TakeWholeFrame(Frame* frame);

  const Limits limits_;
  SliceChain buffer_;
  std::optional<FrameHeader> pending_;  // header read, payload incomplete
  uint64_t skip_ = 0;                   // bytes still to discard
  uint64_t skipped_ = 0;
  absl::Status failed_;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_FRAME_DECODER_H_
