#include "core/rpc/frame_decoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace rpc {

void FrameDecoder::Feed(SliceChain bytes) {
  if (!failed_.ok()) return;
  if (skip_ > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(skip_, bytes.size()));
    bytes.RemovePrefix(n);
    skip_ -= n;
    skipped_ += n;
  }
  buffer_.Append(std::move(bytes));
}

absl::StatusOr<bool> FrameDecoder::NextInto(Frame* frame) {
  if (!failed_.ok()) return failed_;
  if (skip_ > 0) return false;  // Feed() discards the rest first
  if (!pending_.has_value() && TakeWholeFrame(frame)) return true;
  if (!pending_.has_value()) {
    if (buffer_.size() < kFrameHeaderSize) return false;
    uint8_t raw[kFrameHeaderSize];
    buffer_.CopyTo(absl::MakeSpan(raw));
    buffer_.RemovePrefix(kFrameHeaderSize);
    const FrameHeader h = DecodeFrameHeader(raw);
    if (h.reserved != 0) {
      failed_ = absl::InvalidArgumentError("frame header reserved bits set");
      return failed_;
    }
    if (h.type == static_cast<uint8_t>(FrameType::kMessage)) {
      if (h.length > limits_.max_message) {
        // Report now, skip the payload as it comes.
        const size_t n = static_cast<size_t>(std::min<uint64_t>(h.length, buffer_.size()));
        buffer_.RemovePrefix(n);
        skipped_ += n;
        skip_ = h.length - n;
        frame->header = h;
        frame->payload.Clear();
        frame->oversized = true;
        return true;
      }
    } else if (h.length > limits_.max_control) {
      failed_ = absl::ResourceExhaustedError(absl::StrCat(
          FrameTypeName(h.type), " frame of ", h.length, " bytes over the ", limits_.max_control,
          "-byte limit"));
      return failed_;
    }
    pending_ = h;
  }
  if (buffer_.size() < pending_->length) return false;
  frame->header = *pending_;
  frame->payload = buffer_.TakePrefix(pending_->length);
  frame->oversized = false;
  pending_.reset();
  return true;
}

bool FrameDecoder::TakeWholeFrame(Frame* frame) {
  if (buffer_.empty()) return false;
  const Slice& head = buffer_.slices().front();
  if (head.size() < kFrameHeaderSize) return false;
  const FrameHeader h = DecodeFrameHeader(head.data());
  if (h.reserved != 0 || head.size() - kFrameHeaderSize < h.length) return false;
  const uint32_t limit = h.type == static_cast<uint8_t>(FrameType::kMessage)
                             ? limits_.max_message
                             : limits_.max_control;
  if (h.length > limit) return false;  // the general path reports it
  frame->header = h;
  frame->payload.Clear();
  frame->payload.Append(head.Sub(kFrameHeaderSize, h.length));
  frame->oversized = false;
  buffer_.RemovePrefix(kFrameHeaderSize + h.length);
  return true;
}

absl::StatusOr<std::optional<Frame>> FrameDecoder::Next() {
  Frame f;
  absl::StatusOr<bool> got = NextInto(&f);
  if (!got.ok()) return got.status();
  if (!*got) return std::nullopt;
  return std::optional<Frame>(std::move(f));
}

}  // namespace rpc
}  // namespace vrpc
