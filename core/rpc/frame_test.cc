// The RPC framing: header and payload codecs, and the stream decoder's
// limits (HARDENING row 17: lengths 4 MiB - 1, 4 MiB, 4 MiB + 1, UINT32_MAX).
#include "core/rpc/frame.h"

#include <cstdint>
#include <limits>
#include <string>

#include "core/base/status_matchers.h"
#include "core/rpc/frame_decoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace rpc {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

SliceChain Bytes(const std::string& s) { return SliceChain(Slice::Copy(s)); }

std::string HeaderBytes(uint32_t length, FrameType type, uint32_t stream, uint8_t flags = 0,
                        uint16_t reserved = 0) {
  FrameHeader h;
  h.length = length;
  h.type = static_cast<uint8_t>(type);
  h.flags = flags;
  h.reserved = reserved;
  h.stream_id = stream;
  uint8_t raw[kFrameHeaderSize];
  EncodeFrameHeader(h, raw);
  return std::string(reinterpret_cast<char*>(raw), kFrameHeaderSize);
}

std::string FrameBytes(FrameType type, uint32_t stream, const std::string& payload) {
  return HeaderBytes(static_cast<uint32_t>(payload.size()), type, stream) + payload;
}

TEST(FrameTest, HeaderIsLittleEndianAndRoundTrips) {
  const std::string raw = HeaderBytes(0x01020304, FrameType::kMessage, 0x0a0b0c0d, 0x1);
  EXPECT_EQ(raw, std::string("\x04\x03\x02\x01\x03\x01\x00\x00\x0d\x0c\x0b\x0a", 12));
  const FrameHeader h = DecodeFrameHeader(reinterpret_cast<const uint8_t*>(raw.data()));
  EXPECT_EQ(h.length, 0x01020304u);
  EXPECT_EQ(h.type, 3);
  EXPECT_EQ(h.flags, 1);
  EXPECT_EQ(h.stream_id, 0x0a0b0c0du);
}

TEST(FrameTest, RequestHeadersRoundTrip) {
  RequestHeaders h;
  h.method = "/vrpc.echo.Echo/Unary";
  h.timeout = absl::Milliseconds(1500);
  h.metadata = {{"x-trace", "abc"}, {"blob-bin", std::string("\0\1\2", 3)}};
  VRPC_ASSERT_OK_AND_ASSIGN(RequestHeaders back,
                            DecodeRequestHeaders(EncodeRequestHeaders(h), PayloadLimits()));
  EXPECT_EQ(back.method, h.method);
  EXPECT_EQ(back.timeout, absl::Milliseconds(1500));
  EXPECT_EQ(back.metadata, h.metadata);

  h.timeout = absl::InfiniteDuration();
  VRPC_ASSERT_OK_AND_ASSIGN(back, DecodeRequestHeaders(EncodeRequestHeaders(h), PayloadLimits()));
  EXPECT_EQ(back.timeout, absl::InfiniteDuration());
  // An already-expired deadline still travels as the smallest timeout.
  h.timeout = -absl::Seconds(1);
  VRPC_ASSERT_OK_AND_ASSIGN(back, DecodeRequestHeaders(EncodeRequestHeaders(h), PayloadLimits()));
  EXPECT_EQ(back.timeout, absl::Microseconds(1));
}

TEST(FrameTest, StatusAndGoAwayRoundTrip) {
  CallStatus s{absl::StatusCode::kResourceExhausted, "too big", {{"k", "v"}}};
  VRPC_ASSERT_OK_AND_ASSIGN(CallStatus back, DecodeStatus(EncodeStatus(s), PayloadLimits()));
  EXPECT_EQ(back.code, absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(back.message, "too big");
  EXPECT_THAT(back.metadata, ElementsAre(Pair("k", "v")));

  GoAway g{41, absl::StatusCode::kUnavailable, "draining"};
  VRPC_ASSERT_OK_AND_ASSIGN(GoAway gb, DecodeGoAway(EncodeGoAway(g), PayloadLimits()));
  EXPECT_EQ(gb.last_stream_id, 41u);
  EXPECT_EQ(gb.code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(gb.message, "draining");
}

TEST(FrameTest, StatusCodesAreGrpcs) {
  // gRPC's numeric codes, which absl shares.
  EXPECT_EQ(static_cast<int>(absl::StatusCode::kDeadlineExceeded), 4);
  EXPECT_EQ(static_cast<int>(absl::StatusCode::kUnavailable), 14);
  EXPECT_EQ(static_cast<int>(absl::StatusCode::kUnauthenticated), 16);
  EXPECT_EQ(CodeFromWire(16), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CodeFromWire(17), absl::StatusCode::kUnknown);
  EXPECT_EQ(CodeFromWire(std::numeric_limits<uint64_t>::max()), absl::StatusCode::kUnknown);
}

TEST(FrameTest, SettingsRoundTripAndIgnoreUnknownIds) {
  Settings s{1000, 2000, 3};
  VRPC_ASSERT_OK_AND_ASSIGN(Settings back, DecodeSettings(EncodeSettings(s), Settings()));
  EXPECT_EQ(back.max_message_size, 1000u);
  EXPECT_EQ(back.initial_window, 2000u);
  EXPECT_EQ(back.max_concurrent_streams, 3u);
  VRPC_ASSERT_OK_AND_ASSIGN(back, DecodeSettings(Bytes(std::string("\x63\x00\x01\x00\x00\x00", 6)),
                                                 Settings()));
  EXPECT_EQ(back.max_message_size, Settings().max_message_size);
  EXPECT_THAT(DecodeSettings(Bytes("12345"), Settings()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeSettings(Bytes(std::string("\x02\x00\x00\x00\x00\x00", 6)), Settings()),
              StatusIs(absl::StatusCode::kInvalidArgument));  // window 0
}

TEST(FrameTest, MalformedPayloadsAreRejected) {
  const PayloadLimits limits;
  // Truncated string, trailing bytes, huge varint, empty key, bad method.
  EXPECT_FALSE(DecodeRequestHeaders(Bytes("\x05/ab"), limits).ok());
  EXPECT_FALSE(DecodeRequestHeaders(Bytes(std::string("\x02/a\x00\x00X", 6)), limits).ok());
  EXPECT_FALSE(DecodeRequestHeaders(Bytes("\x01x\x00\x00"), limits).ok());
  EXPECT_FALSE(DecodeMetadata(Bytes(std::string("\x01\x00\x00", 3)), limits).ok());
  EXPECT_FALSE(DecodeStatus(Bytes("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"), limits).ok());
  EXPECT_FALSE(DecodeWindowUpdate(Bytes(std::string(4, '\0'))).ok());
  EXPECT_FALSE(DecodeWindowUpdate(Bytes("abc")).ok());
}

TEST(FrameTest, MetadataLimitsApplyBeforeBuilding) {
  PayloadLimits limits;
  limits.max_metadata_entries = 2;
  Metadata three = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  EXPECT_THAT(DecodeMetadata(EncodeMetadata(three), limits),
              StatusIs(absl::StatusCode::kResourceExhausted));
  limits.max_metadata_entries = 10;
  limits.max_metadata_bytes = 8;
  Metadata big = {{"key", "0123456789"}};
  EXPECT_THAT(DecodeMetadata(EncodeMetadata(big), limits),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(FrameDecoderTest, FramesSplitAnywhereComeOutWholeAndUncopied) {
  const std::string stream = FrameBytes(FrameType::kPing, 0, "12345678") +
                             FrameBytes(FrameType::kMessage, 1, std::string(1000, 'm')) +
                             FrameBytes(FrameType::kHalfClose, 1, "");
  for (size_t chunk = 1; chunk <= stream.size(); chunk = chunk * 3 + 1) {
    FrameDecoder d(FrameDecoder::Limits{});
    std::vector<Frame> frames;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      d.Feed(Bytes(stream.substr(i, chunk)));
      while (true) {
        VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Frame> f, d.Next());
        if (!f) break;
        frames.push_back(*std::move(f));
      }
    }
    ASSERT_EQ(frames.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(frames[0].payload.ToString(), "12345678");
    EXPECT_EQ(frames[1].header.stream_id, 1u);
    EXPECT_EQ(frames[1].payload.ToString(), std::string(1000, 'm'));
    EXPECT_EQ(frames[2].header.type, static_cast<uint8_t>(FrameType::kHalfClose));
    EXPECT_EQ(d.buffered(), 0u);
  }
  // One contiguous feed: the payload is a view of the fed Slice.
  Slice whole = Slice::Copy(FrameBytes(FrameType::kMessage, 7, "payload"));
  FrameDecoder d(FrameDecoder::Limits{});
  d.Feed(SliceChain(whole));
  VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Frame> f, d.Next());
  ASSERT_TRUE(f.has_value());
  ASSERT_EQ(f->payload.slices().size(), 1u);
  EXPECT_TRUE(f->payload.slices()[0].SharesBackingWith(whole));
}

// HARDENING row 17: the message limit is enforced from the header, the
// payload is skipped without buffering, and the stream stays in sync.
TEST(FrameDecoderTest, MessageLengthBoundaries) {
  constexpr uint32_t kMax = 4 << 20;
  for (uint32_t length : {kMax - 1, kMax, kMax + 1, std::numeric_limits<uint32_t>::max()}) {
    FrameDecoder d(FrameDecoder::Limits{kMax, 64 * 1024});
    d.Feed(Bytes(HeaderBytes(length, FrameType::kMessage, 3)));
    if (length <= kMax) {
      VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Frame> f, d.Next());
      EXPECT_FALSE(f.has_value()) << length;  // waits for the payload
      continue;
    }
    VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Frame> f, d.Next());
    ASSERT_TRUE(f.has_value()) << length;
    EXPECT_TRUE(f->oversized);
    EXPECT_EQ(f->header.stream_id, 3u);
    EXPECT_TRUE(f->payload.empty());
    if (length == kMax + 1) {
      // Feed the payload in pieces, then a good frame: it decodes.
      for (int i = 0; i < 4; ++i) d.Feed(Bytes(std::string(kMax / 4, 'z')));
      EXPECT_EQ(d.buffered(), 0u);
      d.Feed(Bytes(std::string(1, 'z') + FrameBytes(FrameType::kMessage, 5, "ok")));
      VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Frame> next, d.Next());
      ASSERT_TRUE(next.has_value());
      EXPECT_EQ(next->header.stream_id, 5u);
      EXPECT_EQ(next->payload.ToString(), "ok");
      EXPECT_EQ(d.skipped(), uint64_t{kMax} + 1);
    }
  }
}

TEST(FrameDecoderTest, NextIntoOverwritesTheWholeFrame) {
  constexpr uint32_t kMax = 1024;
  FrameDecoder d(FrameDecoder::Limits{kMax, 64 * 1024});
  Frame f;
  d.Feed(Bytes(FrameBytes(FrameType::kMessage, 1, "first")));
  VRPC_ASSERT_OK_AND_ASSIGN(bool got, d.NextInto(&f));
  ASSERT_TRUE(got);
  EXPECT_EQ(f.payload.ToString(), "first");
  // An oversized message leaves no payload behind from the last frame...
  d.Feed(Bytes(HeaderBytes(kMax + 1, FrameType::kMessage, 3) + std::string(kMax + 1, 'z')));
  VRPC_ASSERT_OK_AND_ASSIGN(got, d.NextInto(&f));
  ASSERT_TRUE(got);
  EXPECT_TRUE(f.oversized);
  EXPECT_TRUE(f.payload.empty());
  EXPECT_EQ(f.header.stream_id, 3u);
  // ...and the next frame is not marked oversized.
  d.Feed(Bytes(FrameBytes(FrameType::kMessage, 5, "ok")));
  VRPC_ASSERT_OK_AND_ASSIGN(got, d.NextInto(&f));
  ASSERT_TRUE(got);
  EXPECT_FALSE(f.oversized);
  EXPECT_EQ(f.header.stream_id, 5u);
  EXPECT_EQ(f.payload.ToString(), "ok");
  VRPC_ASSERT_OK_AND_ASSIGN(got, d.NextInto(&f));
  EXPECT_FALSE(got);
}

TEST(FrameDecoderTest, ConnectionErrorsStick) {
  {
    FrameDecoder d(FrameDecoder::Limits{});
    d.Feed(Bytes(HeaderBytes(70000, FrameType::kHeaders, 1)));
    EXPECT_THAT(d.Next(), StatusIs(absl::StatusCode::kResourceExhausted));
    d.Feed(Bytes(FrameBytes(FrameType::kPing, 0, "12345678")));
    EXPECT_FALSE(d.Next().ok());
  }
  {
    FrameDecoder d(FrameDecoder::Limits{});
    d.Feed(Bytes(HeaderBytes(0, FrameType::kPing, 0, 0, 1)));
    EXPECT_THAT(d.Next(), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(FrameDecoderTest, UnknownTypesPassThrough) {
  FrameDecoder d(FrameDecoder::Limits{});
  d.Feed(Bytes(HeaderBytes(2, static_cast<FrameType>(200), 0) + "hi"));
  VRPC_ASSERT_OK_AND_ASSIGN(std::optional<Frame> f, d.Next());
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.type, 200);
  EXPECT_STREQ(FrameTypeName(200), "UNKNOWN");
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
