#include "core/rpc/proto_codec.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/rpc/frame.h"
#include "google/protobuf/io/coded_stream.h"

namespace vrpc {
namespace rpc {

namespace {

// Hands protobuf's serializer buffers of up to kSerializeChunk bytes from
// |allocate| until |size| bytes are out, then small spare ones (the
// serializer may ask for room past the end it was told); Finish() keeps only
// what was written.
class ChunkedOutputStream final : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  ChunkedOutputStream(size_t size, const BufferAllocator& allocate)
      : remaining_(size), allocate_(allocate) {}

  bool Next(void** data, int* size) override {
    const size_t n = remaining_ > 0 ? std::min(remaining_, kSerializeChunk) : kSpare;
    remaining_ -= std::min(remaining_, n);
    uint8_t* raw = nullptr;
    Slice block = allocate_ ? allocate_(n, &raw) : Slice::Allocate(n, &raw);
    if (raw == nullptr || block.size() != n) return false;
    blocks_.push_back(std::move(block));
    backed_up_ = 0;
    count_ += static_cast<int64_t>(n);
    *data = raw;
    *size = static_cast<int>(n);
    return true;
  }
  void BackUp(int count) override {
    backed_up_ = static_cast<size_t>(count);
    count_ -= count;
  }
  int64_t ByteCount() const override { return count_; }

  // Appends what was written to |out|.
  void Finish(SliceChain* out) {
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const size_t used = blocks_[i].size() - (i + 1 == blocks_.size() ? backed_up_ : 0);
      if (used == blocks_[i].size()) {
        out->Append(std::move(blocks_[i]));
      } else if (used > 0) {
        out->Append(blocks_[i].Sub(0, used));
      }
    }
    blocks_.clear();
  }

 private:
  static constexpr size_t kSpare = 64;
  size_t remaining_;
  const BufferAllocator& allocate_;
  std::vector<Slice> blocks_;
  size_t backed_up_ = 0;  // of the last block
  int64_t count_ = 0;
};

}  // namespace

absl::Status Serialize(const google::protobuf::MessageLite& message, SliceChain* out,
                       const BufferAllocator& allocate) {
  if (!message.IsInitialized()) {
    return absl::InvalidArgumentError(
        absl::StrCat("message ", message.GetTypeName(), " is missing required fields"));
  }
  const size_t size = message.ByteSizeLong();
  if (size > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("message over 2 GiB");
  }
  out->Clear();
  if (size == 0) return absl::OkStatus();
  if (size > kSerializeChunk) {
    ChunkedOutputStream stream(size, allocate);
    bool ok;
    {
      google::protobuf::io::CodedOutputStream coded(&stream);
      message.SerializeWithCachedSizes(&coded);
      coded.Trim();
      ok = !coded.HadError();
    }
    if (!ok || stream.ByteCount() != static_cast<int64_t>(size)) {
      return absl::InternalError(absl::StrCat("serializing a ", message.GetTypeName(), " of ",
                                              size, " bytes wrote ", stream.ByteCount()));
    }
    stream.Finish(out);
    return absl::OkStatus();
  }
  uint8_t* data = nullptr;
  // A small message is copied in behind its frame header when it is sent,
  // so the transport's memory (DMA blocks from a locked pool) would only be
  // taken to be copied out of at once: plain memory does.
  Slice buffer = allocate && size > kInlinePayloadBytes ? allocate(size, &data)
                                                        : Slice::Allocate(size, &data);
  message.SerializeWithCachedSizesToArray(data);
  out->Append(std::move(buffer));
  return absl::OkStatus();
}

absl::Status Parse(const SliceChain& in, google::protobuf::MessageLite* message) {
  SliceChainInputStream stream(in);
  if (!message->ParseFromZeroCopyStream(&stream) || stream.ByteCount() != static_cast<int64_t>(in.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("could not parse a ", message->GetTypeName(), " from ", in.size(), " bytes"));
  }
  return absl::OkStatus();
}

bool SliceChainInputStream::Next(const void** data, int* size) {
  const auto& slices = chain_.slices();
  while (index_ < slices.size() && offset_ >= slices[index_].size()) {
    ++index_;
    offset_ = 0;
  }
  if (index_ >= slices.size()) return false;
  const Slice& s = slices[index_];
  const size_t n = std::min<size_t>(s.size() - offset_, std::numeric_limits<int>::max());
  *data = s.data() + offset_;
  *size = static_cast<int>(n);
  offset_ += n;  // BackUp moves back within this slice
  position_ += static_cast<int64_t>(n);
  return true;
}

void SliceChainInputStream::BackUp(int count) {
  // Precondition (protobuf's contract): count <= the size Next returned.
  offset_ -= static_cast<size_t>(count);
  position_ -= count;
}

bool SliceChainInputStream::Skip(int count) {
  const void* data;
  int size;
  while (count > 0) {
    if (!Next(&data, &size)) return false;
    if (size > count) {
      BackUp(size - count);
      return true;
    }
    count -= size;
  }
  return true;
}

}  // namespace rpc
}  // namespace vrpc
