// Fuzz target: the RPC frame decoder and every payload decoder, fed a byte
// stream in chunks whose sizes the input chooses. Invariants: no crash, the
// decoder never buffers more than a header plus the larger limit, skipped
// plus delivered bytes never exceed what was fed, and an error sticks.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/logging.h"
#include "core/rpc/frame.h"
#include "core/rpc/frame_decoder.h"

namespace {

using vrpc::Slice;
using vrpc::SliceChain;
using namespace vrpc::rpc;

constexpr uint32_t kMaxMessage = 64 * 1024;  // small, so oversize paths run
constexpr uint32_t kMaxControl = 4 * 1024;

void DecodePayload(const Frame& f) {
  const PayloadLimits limits;
  switch (static_cast<FrameType>(f.header.type)) {
    case FrameType::kSettings: (void)DecodeSettings(f.payload, Settings()); break;
    case FrameType::kHeaders:
      (void)DecodeRequestHeaders(f.payload, limits);
      (void)DecodeMetadata(f.payload, limits);
      break;
    case FrameType::kTrailers:
    case FrameType::kCancel: (void)DecodeStatus(f.payload, limits); break;
    case FrameType::kWindowUpdate: (void)DecodeWindowUpdate(f.payload); break;
    case FrameType::kGoAway: (void)DecodeGoAway(f.payload, limits); break;
    default: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FrameDecoder decoder(FrameDecoder::Limits{kMaxMessage, kMaxControl});
  size_t pos = 0;
  uint64_t fed = 0, delivered = 0;
  bool failed = false;
  while (pos < size) {
    // First byte of each step: the chunk size (1..256).
    const size_t chunk = size_t{data[pos++]} + 1;
    const size_t n = std::min(chunk, size - pos);
    decoder.Feed(SliceChain(Slice::Copy(absl::Span<const uint8_t>(data + pos, n))));
    fed += n;
    pos += n;
    while (true) {
      auto f = decoder.Next();
      if (!f.ok()) {
        failed = true;
        break;
      }
      VRPC_CHECK(!failed) << "decoder recovered after an error";
      if (!f->has_value()) break;
      delivered += kFrameHeaderSize + (*f)->payload.size();
      if (!(*f)->oversized) {
        VRPC_CHECK((*f)->payload.size() == (*f)->header.length);
        DecodePayload(**f);
      }
    }
    if (failed) break;
    VRPC_CHECK(decoder.buffered() <= kFrameHeaderSize + kMaxMessage) << decoder.buffered();
    VRPC_CHECK(delivered + decoder.skipped() + decoder.buffered() <= fed);
  }
  return 0;
}
