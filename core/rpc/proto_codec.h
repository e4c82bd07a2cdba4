// File: core/rpc/proto_codec.h
//
// Protobuf messages to and from SliceChains, without a contiguous
// intermediate copy:
//   - Serialize writes the message once, straight into the buffers that go
//     to the transport (Slices from |allocate|: on the userspace guest
//     driver, memory the device reads). A large message is cut into
//     kSerializeChunk blocks, so each block can be freed as soon as the
//     transport has sent it, instead of the whole message staying allocated
//     until its last byte is out. A message of up to kInlinePayloadBytes
//     goes to plain memory instead: the session copies it in behind its
//     frame header anyway (frame.h);
//   - Parse reads through a ZeroCopyInputStream over the received Slices,
//     which are views of the transport's buffers (guest memory on the host
//     device), however many pieces the message arrived in.
#ifndef VRPC_CORE_RPC_PROTO_CODEC_H_
#define VRPC_CORE_RPC_PROTO_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "core/buffer/slice.h"
#include "core/rpc/frame.h"
#include "google/protobuf/io/zero_copy_stream.h"
#include "google/protobuf/message_lite.h"

namespace vrpc {
namespace rpc {

// Where serialized bytes go: returns a Slice of |size| bytes and a writable
// pointer to them. Default: heap.
using BufferAllocator = std::function<Slice(size_t size, uint8_t** data)>;

// Messages up to this size are serialized into one buffer; larger ones into
// buffers of this size (one vsock packet's payload each).
inline constexpr size_t kSerializeChunk = 64 * 1024;

// Serializes |message| into |out| (replacing its contents): one buffer, or
// kSerializeChunk-sized buffers for a larger message. kInvalidArgument if it
// is not initialized (missing required fields) or over 2 GiB.
absl::Status Serialize(const google::protobuf::MessageLite& message, SliceChain* out,
                       const BufferAllocator& allocate = nullptr);

// Serialize with |source|.write_allocator() (a Channel) asked for only when
// the message is too large to be copied in behind its frame header: a
// small one goes to plain memory anyway, and asking costs a Channel a lock
// and a copy of its allocator.
template <typename Source>
absl::Status SerializeFor(const google::protobuf::MessageLite& message, SliceChain* out,
                          Source& source) {
  if (message.ByteSizeLong() <= kInlinePayloadBytes) return Serialize(message, out);
  return Serialize(message, out, source.write_allocator());
}

// Parses |in| into |message|. kInvalidArgument if the bytes are not a valid
// message of that type.
absl::Status Parse(const SliceChain& in, google::protobuf::MessageLite* message);

// A ZeroCopyInputStream over a SliceChain (the chain must outlive it).
class SliceChainInputStream final : public google::protobuf::io::ZeroCopyInputStream {
 public:
  explicit SliceChainInputStream(const SliceChain& chain) : chain_(chain) {}

  bool Next(const void** data, int* size) override;
  void BackUp(int count) override;
  bool Skip(int count) override;
  int64_t ByteCount() const override { return position_; }

 private:
  const SliceChain& chain_;
  size_t index_ = 0;      // next slice
  size_t offset_ = 0;     // within slices()[index_] (after a BackUp)
  int64_t position_ = 0;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_PROTO_CODEC_H_
