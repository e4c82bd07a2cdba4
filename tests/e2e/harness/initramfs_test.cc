#include "tests/e2e/harness/initramfs.h"

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness/guest_kernel.h"
#include "tests/e2e/harness/host_tools.h"

namespace vrpc {
namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Names(const std::vector<KernelModule>& modules) {
  std::vector<std::string> names;
  for (const KernelModule& m : modules) names.push_back(m.name);
  return names;
}

TEST(GuestKernelTest, FindsInstalledKernelIndependentlyOfHost) {
  VRPC_ASSERT_OK_AND_ASSIGN(GuestKernel k, FindGuestKernel());
  EXPECT_THAT(k.image, HasSubstr("/boot/vmlinuz-"));
  EXPECT_EQ(k.image, "/boot/vmlinuz-" + k.version);
  EXPECT_EQ(k.modules_dir, "/lib/modules/" + k.version);
  EXPECT_THAT(FindGuestKernel("0.0.0-no-such-kernel"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("tools/install_deps.sh")));
}

TEST(GuestKernelTest, ResolvesDefaultModulesInDependencyOrder) {
  VRPC_ASSERT_OK_AND_ASSIGN(GuestKernel k, FindGuestKernel());
  VRPC_ASSERT_OK_AND_ASSIGN(std::vector<KernelModule> mods,
                            ResolveModules(k, DefaultGuestModules()));
  // Every dependency precedes its user.
  std::vector<std::string> names = Names(mods);
  for (size_t i = 0; i < mods.size(); ++i) {
    for (const std::string& dep : mods[i].depends) {
      auto it = std::find(names.begin(), names.begin() + i, dep);
      EXPECT_NE(it, names.begin() + i) << dep << " must load before " << mods[i].name;
    }
  }
  for (const std::string& want : DefaultGuestModules()) {
    EXPECT_THAT(names, testing::Contains(want));
  }
  std::cerr << "module load order:";
  for (const std::string& n : names) std::cerr << " " << n;
  std::cerr << "\n";
}

TEST(GuestKernelTest, AddsDependenciesOfALeafModule) {
  VRPC_ASSERT_OK_AND_ASSIGN(GuestKernel k, FindGuestKernel());
  VRPC_ASSERT_OK_AND_ASSIGN(std::vector<KernelModule> mods,
                            ResolveModules(k, {"vsock_loopback"}));
  EXPECT_THAT(Names(mods),
              ElementsAre("vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback"));
  EXPECT_THAT(ResolveModules(k, {"vrpc_no_such_module"}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("vrpc_no_such_module")));
  VRPC_ASSERT_OK_AND_ASSIGN(std::string ko, ReadModule(mods[0]));
  EXPECT_EQ(ko.substr(0, 4), "\x7f" "ELF");
}

TEST(GuestKernelTest, ExtractsPvhKernel) {
  VRPC_ASSERT_OK_AND_ASSIGN(GuestKernel k, FindGuestKernel());
  VRPC_ASSERT_OK_AND_ASSIGN(std::string dir, MakeTempDir("pvh_test-"));
  // Debian's kernels have CONFIG_PVH=y and are xz-compressed.
  VRPC_ASSERT_OK_AND_ASSIGN(std::string vmlinux, ExtractPvhKernel(k, dir));
  EXPECT_EQ(vmlinux, dir + "/vmlinux-" + k.version);
  EXPECT_THAT(IsStaticElf(vmlinux), IsOkAndHolds(true));
  // Second call reuses the file.
  EXPECT_THAT(ExtractPvhKernel(k, dir), IsOkAndHolds(vmlinux));
  RemoveTree(dir);
}

TEST(InitScriptTest, QuotesArgumentsAndEnvironment) {
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  const std::string s = MakeInitScript({"vsock", "uio"}, {"/payload/x", "a b", "$HOME"},
                                       {{"FOO", "bar baz"}});
  EXPECT_THAT(s, HasSubstr("insmod /lib/modules/vrpc/vsock.ko || fail 'insmod vsock'\n"
                           "insmod /lib/modules/vrpc/uio.ko || fail 'insmod uio'\n"));
  EXPECT_THAT(s, HasSubstr("export FOO='bar baz'\n"));
  EXPECT_THAT(s, HasSubstr("'/payload/x' 'a b' '$HOME' </dev/null 2>&1\n"));
  EXPECT_THAT(s, HasSubstr("poweroff -f"));
  // The literal markers must not appear (see MakeInitScript).
  EXPECT_THAT(s, Not(HasSubstr(std::string(kMarkerExit))));
  EXPECT_THAT(s, Not(HasSubstr(std::string(kMarkerPayloadBegin))));
}

TEST(InitramfsTest, BuildsArchiveWithBusyboxModulesInitAndPayload) {
  VRPC_ASSERT_OK_AND_ASSIGN(GuestKernel k, FindGuestKernel());
  VRPC_ASSERT_OK_AND_ASSIGN(std::string dir, MakeTempDir("initramfs_test-"));
  InitramfsSpec spec;
  spec.kernel = k;
  spec.argv = {"/bin/sh", "-c", "exit 0"};
  spec.files = {GuestFile{"/payload/data.txt", "", "payload data\n", 0}};
  VRPC_ASSERT_OK_AND_ASSIGN(InitramfsInfo info, BuildInitramfs(spec, dir + "/i.cpio"));
  EXPECT_GT(info.size_bytes, 1000000u);
  EXPECT_EQ(info.module_order.size(), DefaultGuestModules().size());

  VRPC_ASSERT_OK_AND_ASSIGN(std::string cpio, FindTool("cpio"));
  VRPC_ASSERT_OK_AND_ASSIGN(CommandResult r,
                            RunCommand({cpio, "-t", "-v", "--quiet", "-F", info.path}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want :
       {" init\n", " bin/busybox\n", "bin/sh -> /bin/busybox", "sbin/insmod -> /bin/busybox",
        "sbin/poweroff -> /bin/busybox", " lib/modules/vrpc/vsock_loopback.ko\n",
        " lib/modules/vrpc/uio_pci_generic.ko\n", " dev/console\n", " payload/data.txt\n"}) {
    EXPECT_THAT(r.out, HasSubstr(want));
  }
  RemoveTree(dir);

  InitramfsSpec bad = spec;
  bad.argv.clear();
  EXPECT_THAT(BuildInitramfs(bad, "/nonexistent/x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  bad = spec;
  bad.env = {{"NOT VALID", "x"}};
  EXPECT_THAT(BuildInitramfs(bad, "/nonexistent/x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(InitramfsTest, BusyboxIsStatic) {
  VRPC_ASSERT_OK_AND_ASSIGN(std::string busybox, FindTool("busybox", "VRPC_E2E_BUSYBOX"));
  EXPECT_THAT(IsStaticElf(busybox), IsOkAndHolds(true));
}

}  // namespace
}  // namespace e2e
}  // namespace vrpc
