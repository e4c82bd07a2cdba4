// File: core/buffer/slice.h
//
// Slice: a reference-counted, immutable view of bytes that carries the
// lifetime of the memory it points into. SliceChain: an ordered sequence of
// Slices treated as one byte string, split and joined without copying.
//
// Zero-copy contract. A Slice made with Slice::External points into memory the
// Slice does not own (a received packet in mapped guest memory, an rx buffer
// in the driver's shared memory). The release hook given to External runs
// exactly once, when the last Slice sharing that backing is destroyed; the
// transport uses it to hand the buffer back (for example, to return the
// descriptor chain to the used ring). Until then the bytes must stay mapped
// and unchanged. Sub-slices share the backing, so holding any part of a
// received payload holds the whole buffer.
//
// Copies are explicit: Slice::Copy and SliceChain::CopyTo/ToString are the
// only operations here that move payload bytes, so callers can count them.
//
// Thread-safety: a Slice may be copied and destroyed concurrently from several
// threads (the reference count is atomic); a single Slice or SliceChain object
// is not synchronized.
#ifndef VRPC_CORE_BUFFER_SLICE_H_
#define VRPC_CORE_BUFFER_SLICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vrpc {

class Slice {
 public:
  // An empty slice.
  Slice() = default;

  // Copies |bytes| into a new heap buffer owned by the slice.
  static Slice Copy(absl::Span<const uint8_t> bytes);
  static Slice Copy(absl::string_view bytes);

  // Allocates |size| uninitialized bytes owned by the slice and stores a
  // writable pointer to them in |*data|. The caller fills the bytes before
  // sharing the slice.
  static Slice Allocate(size_t size, uint8_t** data);

  // Wraps |size| bytes at |data| without copying. |release| (may be empty)
  // runs exactly once, on whichever thread drops the last reference to this
  // backing. |data| must stay valid and unmodified until then.
  static Slice External(const uint8_t* data, size_t size,
                        absl::AnyInvocable<void() &&> release);
  // External with a concrete release object (a small struct or lambda, run
  // once as std::move(release)()): it lives in the reference count's own
  // allocation, so this costs one allocation where External's type-erased
  // hook costs two once its captures outgrow AnyInvocable's inline room.
  template <typename Release>
  static Slice ExternalWith(const uint8_t* data, size_t size, Release release) {
    struct Deleter {
      Release release;
      void operator()(const void*) { std::move(release)(); }
    };
    return Slice(std::shared_ptr<const void>(nullptr, Deleter{std::move(release)}), data, size);
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  absl::Span<const uint8_t> span() const { return {data_, size_}; }
  absl::string_view view() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }

  // Returns bytes [offset, offset + length) sharing this slice's backing.
  // Precondition (CHECKed): offset + length <= size().
  Slice Sub(size_t offset, size_t length) const {
    if (offset > size_ || length > size_ - offset) OutOfRange("Sub", offset, length);
    return Slice(owner_, data_ + offset, length);
  }
  // Drops the first |n| bytes in place (no reference taken or released).
  // Precondition (CHECKed): n <= size().
  void RemovePrefix(size_t n) {
    if (n > size_) OutOfRange("RemovePrefix", n, 0);
    data_ += n;
    size_ -= n;
  }

  // True when both slices hold the same backing (used by tests to prove that
  // no copy happened).
  bool SharesBackingWith(const Slice& other) const {
    return owner_ != nullptr && owner_ == other.owner_;
  }

 private:
  friend class SliceChain;  // Append grows a slice over an adjacent one

  Slice(std::shared_ptr<const void> owner, const uint8_t* data, size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}
  // Aborts: a precondition above was broken (kept out of line, so the hot
  // inline bodies stay small).
  [[noreturn]] void OutOfRange(const char* what, size_t a, size_t b) const;

  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A byte string made of Slices. Splitting and appending never copy bytes.
// Empty slices are never stored, and a slice appended right behind the last
// one in the same backing (frames written one after another into one block)
// grows that slice instead of adding one.
class SliceChain {
 public:
  using Slices = absl::InlinedVector<Slice, 2>;

  SliceChain() = default;
  explicit SliceChain(Slice slice) { Append(std::move(slice)); }

  SliceChain(SliceChain&& other) noexcept
      : slices_(std::move(other.slices_)), size_(other.size_) {
    other.slices_.clear();
    other.size_ = 0;
  }
  SliceChain& operator=(SliceChain&& other) noexcept {
    if (this == &other) return *this;
    // absl's move assignment of inline elements goes through its generic
    // Assign; chains are short, so move them one by one.
    slices_.clear();
    for (Slice& s : other.slices_) slices_.push_back(std::move(s));
    size_ = other.size_;
    other.slices_.clear();
    other.size_ = 0;
    return *this;
  }
  // Copying a chain copies references, not bytes.
  SliceChain(const SliceChain&) = default;
  SliceChain& operator=(const SliceChain&) = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Slices& slices() const { return slices_; }

  void Append(Slice slice) {
    if (slice.empty()) return;
    size_ += slice.size_;
    if (!slices_.empty()) {
      Slice& last = slices_.back();
      if (last.SharesBackingWith(slice) && last.data_ + last.size_ == slice.data_) {
        last.size_ += slice.size_;  // grows over the adjacent bytes
        return;
      }
    }
    slices_.push_back(std::move(slice));
  }
  void Append(SliceChain chain);
  void Clear() {
    slices_.clear();
    size_ = 0;
  }

  // Removes the first |n| bytes and returns them as a chain (no copy).
  // Precondition (CHECKed): n <= size().
  SliceChain TakePrefix(size_t n);
  // Drops the first |n| bytes. Precondition (CHECKed): n <= size().
  void RemovePrefix(size_t n);

  // Copies the first min(size(), out.size()) bytes into |out|; returns the
  // count. The chain is unchanged.
  size_t CopyTo(absl::Span<uint8_t> out) const;
  // Copies the whole chain into a std::string.
  std::string ToString() const;

 private:
  Slices slices_;
  size_t size_ = 0;
};

}  // namespace vrpc

#endif  // VRPC_CORE_BUFFER_SLICE_H_
