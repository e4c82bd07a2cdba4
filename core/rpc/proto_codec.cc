#include "core/rpc/proto_codec.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"

namespace vrpc {
namespace rpc {

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
  uint8_t* data = nullptr;
  Slice buffer = allocate ? allocate(size, &data) : Slice::Allocate(size, &data);
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
