#include "core/buffer/slice.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/base/logging.h"

namespace vrpc {
namespace {

// The release hook of an External slice: owned by the shared_ptr's deleter,
// run once when the last reference goes.
struct ExternalRelease {
  absl::AnyInvocable<void() &&> release;
  void operator()(const void*) {
    if (release) std::move(release)();
  }
};

}  // namespace

Slice Slice::Copy(absl::Span<const uint8_t> bytes) {
  uint8_t* data = nullptr;
  Slice slice = Allocate(bytes.size(), &data);
  if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
  return slice;
}

Slice Slice::Copy(absl::string_view bytes) {
  return Copy(absl::Span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

namespace {

// Small buffers share one allocation with their reference count.
template <size_t N>
struct alignas(16) InlineBytes {
  InlineBytes() {}  // not zeroed: make_shared would value-initialize the bytes
  uint8_t bytes[N];
};

// One allocation for the bytes and the reference count; *data receives
// the bytes.
template <size_t N>
std::shared_ptr<const void> AllocateInline(uint8_t** data) {
  std::shared_ptr<InlineBytes<N>> block = std::make_shared<InlineBytes<N>>();
  *data = block->bytes;
  return std::shared_ptr<const void>(std::move(block), *data);
}

}  // namespace

Slice Slice::Allocate(size_t size, uint8_t** data) {
  if (size <= 64) {
    std::shared_ptr<const void> owner = AllocateInline<64>(data);
    return Slice(std::move(owner), *data, size);
  }
  if (size <= 512) {
    std::shared_ptr<const void> owner = AllocateInline<512>(data);
    return Slice(std::move(owner), *data, size);
  }
  std::shared_ptr<uint8_t[]> buffer(new uint8_t[size]);
  *data = buffer.get();
  const uint8_t* begin = buffer.get();
  return Slice(std::shared_ptr<const void>(std::move(buffer), begin), begin, size);
}

Slice Slice::External(const uint8_t* data, size_t size,
                      absl::AnyInvocable<void() &&> release) {
  std::shared_ptr<const void> owner(nullptr, ExternalRelease{std::move(release)});
  return Slice(std::move(owner), data, size);
}

void Slice::OutOfRange(const char* what, size_t a, size_t b) const {
  VRPC_CHECK(false) << what << "(" << a << ", " << b << ") of a slice of " << size_;
  std::abort();
}

void SliceChain::Append(SliceChain chain) {
  for (Slice& s : chain.slices_) Append(std::move(s));
}

SliceChain SliceChain::TakePrefix(size_t n) {
  VRPC_CHECK(n <= size_) << "TakePrefix(" << n << ") of " << size_;
  SliceChain prefix;
  size_t whole = 0;
  while (whole < slices_.size() && slices_[whole].size() <= n - prefix.size_) {
    prefix.Append(std::move(slices_[whole]));
    ++whole;
  }
  slices_.erase(slices_.begin(), slices_.begin() + whole);
  const size_t rest = n - prefix.size_;
  if (rest > 0) {
    Slice& head = slices_.front();
    prefix.Append(head.Sub(0, rest));
    head.RemovePrefix(rest);
  }
  size_ -= n;
  return prefix;
}

void SliceChain::RemovePrefix(size_t n) {
  VRPC_CHECK(n <= size_) << "RemovePrefix(" << n << ") of " << size_;
  size_ -= n;
  size_t whole = 0;
  while (whole < slices_.size() && slices_[whole].size() <= n) {
    n -= slices_[whole].size();
    ++whole;
  }
  slices_.erase(slices_.begin(), slices_.begin() + whole);
  if (n > 0) slices_.front().RemovePrefix(n);
}

size_t SliceChain::CopyTo(absl::Span<uint8_t> out) const {
  size_t copied = 0;
  for (const Slice& s : slices_) {
    if (copied == out.size()) break;
    const size_t n = std::min(s.size(), out.size() - copied);
    std::memcpy(out.data() + copied, s.data(), n);
    copied += n;
  }
  return copied;
}

std::string SliceChain::ToString() const {
  std::string out;
  out.reserve(size_);
  for (const Slice& s : slices_) {
    out.append(reinterpret_cast<const char*>(s.data()), s.size());
  }
  return out;
}

}  // namespace vrpc
