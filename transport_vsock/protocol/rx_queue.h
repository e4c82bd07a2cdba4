// File: transport_vsock/protocol/rx_queue.h
//
// RxQueue: the received, not yet consumed payload of one connection.
//
// Payload is kept as Slices pointing into the transport's buffers (zero
// copy). Tiny payloads are the exception: a peer sending 1-byte packets would
// otherwise pin one transport buffer per byte (HARDENING.md row 9, Linux's
// "limit the memory used per-socket"), so payloads shorter than |copy_below|
// are copied into a small owned chunk and their buffer is released at once.
// Copied bytes are counted.
//
// For SEQPACKET the queue keeps message boundaries (EOM) and record marks
// (EOR); only complete messages are readable.
//
// Memory: the caller (the credit account) bounds the bytes pushed; with the
// small-payload rule the number of Slices is at most bytes / copy_below + 1.
// Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_PROTOCOL_RX_QUEUE_H_
#define VRPC_TRANSPORT_VSOCK_PROTOCOL_RX_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "core/buffer/slice.h"

namespace vrpc {
namespace vsock {

// One SEQPACKET message as delivered to the application.
struct Message {
  SliceChain data;
  bool end_of_record = false;  // the sender set MSG_EOR (VIRTIO_VSOCK_SEQ_EOR)
};

class RxQueue {
 public:
  // |copy_below|: payloads shorter than this are copied (0 disables).
  explicit RxQueue(uint32_t copy_below) : copy_below_(copy_below) {}
  RxQueue(const RxQueue&) = delete;
  RxQueue& operator=(const RxQueue&) = delete;

  // Appends |payload|. For SEQPACKET, |end_of_message| closes the current
  // message (which may then be empty only if it had earlier fragments) and
  // |end_of_record| marks it.
  void Push(SliceChain payload, bool end_of_message = false, bool end_of_record = false);

  // STREAM: removes and returns up to |max| bytes.
  SliceChain Read(size_t max);

  // SEQPACKET: removes and returns the oldest complete message, if any.
  std::optional<Message> ReadMessage();

  // Drops everything (releasing the transport's buffers).
  void Clear();

  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0 && complete_messages_ == 0; }
  size_t complete_messages() const { return complete_messages_; }
  size_t slice_count() const { return chunks_.size(); }
  // Payload bytes memcpy'd by the small-payload rule since construction.
  uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  struct Chunk {
    Slice data;
    bool eom = false;
    bool eor = false;
  };

  void PushSlice(Slice slice);
  void AppendSmall(const Slice& slice);

  const uint32_t copy_below_;
  std::deque<Chunk> chunks_;
  size_t bytes_ = 0;
  size_t complete_messages_ = 0;
  bool open_message_ = false;  // SEQPACKET fragments pushed without EOM yet
  uint64_t copied_bytes_ = 0;
  // The owned chunk that small payloads are copied into.
  Slice small_backing_;
  uint8_t* small_data_ = nullptr;
  size_t small_used_ = 0;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_PROTOCOL_RX_QUEUE_H_
