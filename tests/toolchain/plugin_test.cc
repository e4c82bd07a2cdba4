// Checks the code that vrpc_cc_proto_library's `plugin` support generated
// with protoc_gen_toolchaintest.cc.

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/toolchain/echo.toolchaintest.pb.h"

namespace {

using ::testing::ElementsAre;

TEST(PluginTest, GeneratedCodeListsServiceMethods) {
  EXPECT_THAT(vrpc::toolchain_test::toolchaintest::ServiceMethods(),
              ElementsAre("tc:Echo.Say"));
  // The plugin's header includes the ordinary generated code.
  vrpc::toolchain_test::EchoRequest request;
  request.set_text("x");
  EXPECT_EQ(request.text(), "x");
}

}  // namespace
