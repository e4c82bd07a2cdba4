#include "tests/e2e/harness/cpio.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness/host_tools.h"

namespace vrpc {
namespace e2e {
namespace {

using ::testing::HasSubstr;

// Lists |archive| with the host's cpio(1), as an independent reader.
std::string ListWithCpio(const std::string& archive) {
  absl::StatusOr<std::string> dir = MakeTempDir("cpio_test-");
  EXPECT_THAT(dir, IsOk());
  if (!dir.ok()) return "";
  const std::string path = *dir + "/a.cpio";
  EXPECT_THAT(WriteStringToFile(path, archive), IsOk());
  absl::StatusOr<std::string> cpio = FindTool("cpio");
  EXPECT_THAT(cpio, IsOk());
  if (!cpio.ok()) return "";
  absl::StatusOr<CommandResult> r =
      RunCommand({*cpio, "-t", "-v", "--quiet", "--numeric-uid-gid", "-F", path});
  EXPECT_THAT(r, IsOk());
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->err;
  absl::StatusOr<CommandResult> content =
      RunCommand({*cpio, "-i", "--quiet", "--to-stdout", "-F", path, "etc/hello"});
  EXPECT_THAT(content, IsOk());
  RemoveTree(*dir);
  return r->out + "--- etc/hello: " + (content.ok() ? content->out : "");
}

TEST(CpioWriterTest, ProducesArchiveThatCpioReads) {
  CpioWriter w;
  w.AddDirectory("/tmp", 01777);
  w.AddFile("/etc/hello", "hello, guest\n", 0640);
  w.AddFile("/a/b/c/deep", std::string(1001, 'x'), 0755);  // odd size: padding
  w.AddSymlink("/bin/sh", "/bin/busybox");
  w.AddCharDevice("/dev/console", 5, 1);
  EXPECT_TRUE(w.Contains("/a/b"));  // implicit parent
  EXPECT_TRUE(w.Contains("a/b/c/deep"));
  EXPECT_FALSE(w.Contains("/nope"));
  const std::string archive = w.Finish();
  EXPECT_EQ(archive.size() % 512, 0u);
  EXPECT_EQ(archive.substr(0, 6), "070701");

  const std::string listing = ListWithCpio(archive);
  EXPECT_THAT(listing, HasSubstr("drwxrwxrwt"));
  EXPECT_THAT(listing, HasSubstr(" tmp\n"));
  EXPECT_THAT(listing, HasSubstr("-rw-r-----   1 0        0              13"));
  EXPECT_THAT(listing, HasSubstr(" etc/hello\n"));
  EXPECT_THAT(listing, HasSubstr(" a/b/c/deep\n"));
  EXPECT_THAT(listing, HasSubstr(" a/b\n"));
  EXPECT_THAT(listing, HasSubstr("bin/sh -> /bin/busybox"));
  EXPECT_THAT(listing, HasSubstr("crw-------"));
  EXPECT_THAT(listing, HasSubstr("5,   1"));
  EXPECT_THAT(listing, HasSubstr(" dev/console"));
  EXPECT_THAT(listing, HasSubstr("--- etc/hello: hello, guest\n"));
}

TEST(HostToolsTest, CompareVersions) {
  EXPECT_LT(CompareVersions("6.1.0-9-amd64", "6.1.0-56-amd64"), 0);
  EXPECT_GT(CompareVersions("6.10.0-1-amd64", "6.9.12-1-amd64"), 0);
  EXPECT_EQ(CompareVersions("6.1.0-56-amd64", "6.1.0-56-amd64"), 0);
  EXPECT_LT(CompareVersions("6.1", "6.1.0"), 0);
}

TEST(HostToolsTest, RunCommandCapturesOutputAndExitCode) {
  absl::StatusOr<CommandResult> r =
      RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(RunCommand({"/nonexistent/program"}).ok());
}

TEST(HostToolsTest, IsStaticElf) {
  // This test binary is dynamically linked (Bazel's default for tests).
  EXPECT_THAT(IsStaticElf("/proc/self/exe"), IsOkAndHolds(false));
  EXPECT_THAT(IsStaticElf("/etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HostToolsTest, FindToolReportsMissingToolClearly) {
  absl::StatusOr<std::string> r = FindTool("vrpc-no-such-tool");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition,
                          HasSubstr("tools/install_deps.sh")));
  EXPECT_THAT(FindTool("sh"), IsOk());
}

}  // namespace
}  // namespace e2e
}  // namespace vrpc
