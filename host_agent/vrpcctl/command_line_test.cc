// File: host_agent/vrpcctl/command_line_test.cc
#include "host_agent/vrpcctl/command_line.h"

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vrpcctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CommandLineTest, Exec) {
  auto c = ParseCommandLine({"--vm", "vm1", "exec", "-i", "--", "ls", "-l", "/"}, "");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->vm, "vm1");
  EXPECT_EQ(c->gateway, "/run/vrpc/gateway.sock");
  EXPECT_TRUE(c->interactive);
  EXPECT_THAT(c->argv, ElementsAre("ls", "-l", "/"));
  auto d = ParseCommandLine({"--vm=vm1", "--json", "--gateway=/tmp/g", "exec", "uname"}, "/env");
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->json);
  EXPECT_EQ(d->gateway, "/tmp/g");
  EXPECT_THAT(d->argv, ElementsAre("uname"));
  EXPECT_EQ(ParseCommandLine({"--vm", "v", "info"}, "/env")->gateway, "/env");
}

TEST(CommandLineTest, CopyDirections) {
  auto up = ParseCommandLine({"--vm", "v", "cp", "./a", ":/root/a"}, "");
  ASSERT_THAT(up, IsOk());
  EXPECT_TRUE(up->upload);
  EXPECT_EQ(up->src, "./a");
  EXPECT_EQ(up->dst, "/root/a");
  auto down = ParseCommandLine({"--vm", "v", "cp", ":/etc/hostname", "h"}, "");
  ASSERT_THAT(down, IsOk());
  EXPECT_FALSE(down->upload);
  EXPECT_EQ(down->src, "/etc/hostname");
}

TEST(CommandLineTest, Forward) {
  auto f = ParseCommandLine({"--vm", "v", "forward", "8080:80"}, "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->local_port, 8080u);
  EXPECT_EQ(f->remote_port, 80u);
}

TEST(CommandLineTest, Errors) {
  const std::vector<std::pair<std::vector<std::string>, const char*>> bad = {
      {{"info"}, "--vm"},
      {{"--vm", "v"}, "no command"},
      {{"--vm", "v", "exec"}, "needs a command"},
      {{"--vm", "v", "cp", "a", "b"}, "exactly one"},
      {{"--vm", "v", "cp", ":/a", ":/b"}, "exactly one"},
      {{"--vm", "v", "cp", "a", ":rel"}, "absolute"},
      {{"--vm", "v", "forward", "80"}, "LOCAL_PORT:REMOTE_PORT"},
      {{"--vm", "v", "forward", "0:80"}, "LOCAL_PORT:REMOTE_PORT"},
      {{"--vm", "v", "dance"}, "unknown command"},
      {{"--colour", "--vm", "v", "info"}, "unknown flag"},
      {{"--vm"}, "needs a value"},
      {{"--timeout=-1", "--vm", "v", "info"}, "--timeout"},
  };
  for (const auto& [args, why] : bad) {
    EXPECT_THAT(ParseCommandLine(args, "").status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)))
        << args.size();
  }
  EXPECT_TRUE(ParseCommandLine({"--help"}, "")->help);
}

}  // namespace
}  // namespace vrpcctl
}  // namespace vrpc
