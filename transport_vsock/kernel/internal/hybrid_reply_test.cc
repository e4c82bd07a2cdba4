#include "transport_vsock/kernel/internal/hybrid_reply.h"

#include <string>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace kernel {
namespace internal {
namespace {

using ::testing::HasSubstr;

TEST(HybridReplyTest, RequestLine) { EXPECT_EQ(HybridConnectLine(5000), "CONNECT 5000\n"); }

TEST(HybridReplyTest, AcceptsGuestAndHostPortForms) {
  // vhost-device-vsock / vrpc: the guest port; Firecracker: a host port
  // from [2^30, 2^31).
  for (const auto& [text, port] : {std::pair<std::string, uint32_t>{"OK 5000\n", 5000},
                                   {"OK 1073741824\n", 1073741824u},
                                   {"OK 4294967295\n", 4294967295u},
                                   {"OK 7\r\n", 7}}) {
    VRPC_ASSERT_OK_AND_ASSIGN(HybridReply r, ParseHybridReply(text));
    EXPECT_TRUE(r.complete) << text;
    EXPECT_EQ(r.port, port) << text;
    EXPECT_EQ(r.line_bytes, text.size()) << text;
  }
}

TEST(HybridReplyTest, StopsAtTheNewline) {
  VRPC_ASSERT_OK_AND_ASSIGN(HybridReply r, ParseHybridReply("OK 9\nhello\nOK 3\n"));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.port, 9u);
  EXPECT_EQ(r.line_bytes, 5u);
}

TEST(HybridReplyTest, IncompleteLineWaits) {
  for (const char* text : {"", "O", "OK", "OK 50"}) {
    VRPC_ASSERT_OK_AND_ASSIGN(HybridReply r, ParseHybridReply(text));
    EXPECT_FALSE(r.complete) << text;
  }
}

TEST(HybridReplyTest, RejectsAnythingElse) {
  for (const char* text :
       {"\n", "OK\n", "OK \n", "ok 5\n", "OK +5\n", "OK  5\n", "OK 5 \n", "OK 5x\n",
        "OK 4294967296\n", "OK 99999999999\n", "ERR no listener\n", "CONNECT 5\n"}) {
    EXPECT_THAT(ParseHybridReply(text),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("expected \"OK <port>\"")))
        << text;
  }
}

TEST(HybridReplyTest, RejectsALineThatIsTooLong) {
  const std::string garbage(kMaxHybridReplyLine, 'x');
  EXPECT_THAT(ParseHybridReply(garbage),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no newline")));
  // A newline after the limit does not help.
  EXPECT_THAT(ParseHybridReply(garbage + "\n"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no newline")));
  // A newline as the last byte allowed ends the line (which is then judged).
  EXPECT_THAT(ParseHybridReply(std::string(kMaxHybridReplyLine - 1, 'x') + "\n"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("expected")));
}

TEST(HybridReplyTest, QuotesTheLineEscaped) {
  EXPECT_THAT(ParseHybridReply(std::string("NO\x01\n")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("NO\\001")));
}

}  // namespace
}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
