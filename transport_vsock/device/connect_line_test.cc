#include "transport_vsock/device/connect_line.h"

#include <string>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

using ::testing::Optional;

TEST(ConnectLineTest, ParsesPorts) {
  EXPECT_THAT(ParseConnectLine("CONNECT 1234"), IsOkAndHolds(1234u));
  EXPECT_THAT(ParseConnectLine("connect 0"), IsOkAndHolds(0u));
  EXPECT_THAT(ParseConnectLine("Connect 4294967294\r"), IsOkAndHolds(4294967294u));
}

TEST(ConnectLineTest, RejectsMalformedLines) {
  for (const char* bad : {"", "CONNECT", "CONNECT ", "CONNECT  1", "CONNECT -1", "CONNECT 1x",
                          "CONNECT 4294967295", "CONNECT 99999999999", "CONNEC 1",
                          "CONNECT\t1", "OK 1", "CONNECT 1 2"}) {
    EXPECT_THAT(ParseConnectLine(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(ConnectLineTest, FormatsOk) { EXPECT_EQ(FormatOkLine(52), "OK 52\n"); }

TEST(LineReaderTest, AssemblesAcrossReadsAndLeavesTheRest) {
  LineReader reader;
  size_t used = 0;
  EXPECT_THAT(reader.Feed("CONN", &used), IsOkAndHolds(std::nullopt));
  EXPECT_EQ(used, 4u);
  EXPECT_THAT(reader.Feed("ECT 7\npayload", &used), IsOkAndHolds(Optional(std::string("CONNECT 7"))));
  EXPECT_EQ(used, 6u);  // "payload" is the stream's
}

TEST(LineReaderTest, BoundsTheLine) {
  LineReader reader;
  size_t used = 0;
  EXPECT_THAT(reader.Feed(std::string(kMaxConnectLine, 'x'), &used), IsOkAndHolds(std::nullopt));
  EXPECT_THAT(reader.Feed("x", &used), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
