#include "transport_vsock/driver/probe_echo.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

TEST(ProbePatternTest, FillMatchesBytesAndMismatchesAreCounted) {
  // Across the pattern's period (a prime, 65521) and at odd offsets.
  for (uint64_t offset : {uint64_t{0}, uint64_t{65520}, uint64_t{1} << 33}) {
    std::vector<uint8_t> buf(200000);
    ProbePatternFill(offset, buf.data(), buf.size());
    for (size_t i = 0; i < buf.size(); i += 977) {
      ASSERT_EQ(buf[i], ProbePatternByte(offset + i));
    }
    EXPECT_EQ(ProbePatternMismatches(offset, buf.data(), buf.size()), 0u);
    buf[0] ^= 1;
    buf[65521] ^= 0x80;
    buf.back() ^= 0xff;
    EXPECT_EQ(ProbePatternMismatches(offset, buf.data(), buf.size()), 3u);
    EXPECT_EQ(ProbePatternMismatches(offset + 1, buf.data(), 0), 0u);
  }
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
