#include "host_agent/options.h"

#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace host_agent {
namespace {

using ::testing::HasSubstr;

TEST(OptionsTest, SingleVmFlags) {
  VRPC_ASSERT_OK_AND_ASSIGN(
      Options o, ParseOptions({"--guest-cid", "3", "--socket", "/tmp/a", "--uds-path=/tmp/b"}));
  ASSERT_EQ(o.vms.size(), 1u);
  EXPECT_EQ(o.vms[0].guest_cid, 3u);
  EXPECT_EQ(o.vms[0].socket, "/tmp/a");
  EXPECT_EQ(o.vms[0].uds_path, "/tmp/b");
}

TEST(OptionsTest, RepeatedVmSpecs) {
  VRPC_ASSERT_OK_AND_ASSIGN(
      Options o, ParseOptions({"--vm", "guest-cid=3,socket=/a,uds-path=/b",
                               "--vm=guest-cid=4,socket=/c,uds-path=/d"}));
  ASSERT_EQ(o.vms.size(), 2u);
  EXPECT_EQ(o.vms[1].guest_cid, 4u);
  EXPECT_EQ(o.vms[1].uds_path, "/d");
}

TEST(OptionsTest, Rejections) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"--guest-cid", "2", "--socket", "/a", "--uds-path", "/b"},
      {"--guest-cid", "4294967295", "--socket", "/a", "--uds-path", "/b"},
      {"--guest-cid", "x", "--socket", "/a", "--uds-path", "/b"},
      {"--guest-cid", "3", "--socket", "/a"},
      {"--vm", "guest-cid=3,socket=/a"},
      {"--vm", "guest-cid=3,socket=/a,uds-path=/b,color=red"},
      {"--vm", "guest-cid=3,socket=/a,uds-path=/b", "--vm", "guest-cid=3,socket=/c,uds-path=/d"},
      {"--vm", "guest-cid=3,socket=/a,uds-path=/b", "--vm", "guest-cid=4,socket=/a,uds-path=/d"},
      {"--vm", "guest-cid=3,socket=/a,uds-path=/b", "--guest-cid", "4"},
      {"--frobnicate", "1"},
      {"--socket"},
      {"--guest-cid", "3", "--socket", "/a", "--uds-path", "/b", "--ring-mode", "spin"},
      {"--guest-cid", "3", "--socket", "/" + std::string(107, 's'), "--uds-path", "/b"},
      {"--guest-cid", "3", "--socket", "/a", "--uds-path", "/" + std::string(96, 'u')},
  };
  for (const auto& args : bad) {
    EXPECT_THAT(ParseOptions(args), StatusIs(absl::StatusCode::kInvalidArgument))
        << ::testing::PrintToString(args);
  }
  EXPECT_THAT(ParseOptions({"--frobnicate", "1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--frobnicate")));
}

TEST(OptionsTest, LongestPathsThatFit) {
  EXPECT_THAT(ParseOptions({"--guest-cid", "3", "--socket", "/" + std::string(106, 's'),
                            "--uds-path", "/" + std::string(95, 'u')}),
              IsOk());
}

TEST(OptionsTest, RingModeAppliesToEveryVm) {
  VRPC_ASSERT_OK_AND_ASSIGN(
      Options o, ParseOptions({"--ring-mode=adaptive", "--vm", "guest-cid=3,socket=/a,uds-path=/b",
                               "--vm", "guest-cid=4,socket=/c,uds-path=/d"}));
  ASSERT_EQ(o.vms.size(), 2u);
  EXPECT_EQ(o.vms[0].ring_mode, "adaptive");
  EXPECT_EQ(o.vms[1].ring_mode, "adaptive");
  VRPC_ASSERT_OK_AND_ASSIGN(
      Options d, ParseOptions({"--guest-cid", "3", "--socket", "/a", "--uds-path", "/b"}));
  EXPECT_EQ(d.vms[0].ring_mode, "interrupt");
}

TEST(OptionsTest, Help) {
  VRPC_ASSERT_OK_AND_ASSIGN(Options o, ParseOptions({"--help"}));
  EXPECT_TRUE(o.help);
  EXPECT_THAT(Usage(), HasSubstr("--uds-path"));
}

}  // namespace
}  // namespace host_agent
}  // namespace vrpc
