#include "core/rpc/service.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace rpc {
namespace {

absl::Status Nothing(ServerCall&) { return absl::OkStatus(); }

class Svc : public GenericService {
 public:
  Svc() {
    AddMethod("/pkg.Svc/Get", MethodKind::kUnary, Nothing);
    AddMethod("/pkg.Svc/GetMany", MethodKind::kServerStreaming, Nothing);
    AddMethod("/pkg.Other/Get2", MethodKind::kUnary, Nothing);
  }
  bool Inline(const std::string& name) const {
    for (const auto& m : methods()) {
      if (m->name == name) return m->run_inline;
    }
    return false;
  }
};

TEST(ServiceTest, RunInlineMarksOnlyTheNamedUnaryMethod) {
  Svc svc;
  EXPECT_FALSE(svc.Inline("/pkg.Svc/Get"));
  ASSERT_TRUE(svc.RunInline("Get").ok());
  EXPECT_TRUE(svc.Inline("/pkg.Svc/Get"));
  EXPECT_FALSE(svc.Inline("/pkg.Other/Get2"));  // "Get" is not a suffix match of "Get2"
  ASSERT_TRUE(svc.RunInline("/pkg.Other/Get2").ok());
  EXPECT_TRUE(svc.Inline("/pkg.Other/Get2"));
}

TEST(ServiceTest, RunInlineRefusesStreamingAndUnknownMethods) {
  Svc svc;
  EXPECT_EQ(svc.RunInline("GetMany").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(svc.Inline("/pkg.Svc/GetMany"));
  EXPECT_EQ(svc.RunInline("Put").code(), absl::StatusCode::kNotFound);
  // A full name must match whole.
  EXPECT_EQ(svc.RunInline("/Get").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(svc.RunInline("et").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
