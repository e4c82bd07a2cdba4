#include "core/base/status_macros.h"

#include <memory>
#include <string>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;

absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("boom") : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(bool fail, int v) {
  if (fail) return absl::NotFoundError("no int");
  return std::make_unique<int>(v);
}

absl::Status Chain(bool fail_first, int* reached) {
  VRPC_RETURN_IF_ERROR(FailIf(fail_first));
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<int> Sum(bool fail_a, bool fail_b) {
  VRPC_ASSIGN_OR_RETURN(std::unique_ptr<int> a, MakeInt(fail_a, 2));  // move-only
  VRPC_ASSIGN_OR_RETURN(auto b, MakeInt(fail_b, 3));
  return *a + *b;
}

TEST(StatusMacrosTest, ReturnIfErrorPassesThroughOk) {
  int reached = 0;
  VRPC_EXPECT_OK(Chain(false, &reached));
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsEarly) {
  int reached = 0;
  EXPECT_THAT(Chain(true, &reached),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("boom")));
  EXPECT_EQ(reached, 0);
}

TEST(StatusMacrosTest, AssignOrReturnMovesValues) {
  EXPECT_THAT(Sum(false, false), IsOkAndHolds(5));
  EXPECT_THAT(Sum(true, false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Sum(false, true), StatusIs(absl::StatusCode::kNotFound, "no int"));
}

TEST(StatusMatchersTest, MatchersRejectWhatTheyShould) {
  EXPECT_THAT(absl::CancelledError(), ::testing::Not(IsOk()));
  EXPECT_THAT(absl::StatusOr<int>(4), ::testing::Not(IsOkAndHolds(5)));
  EXPECT_THAT(absl::StatusOr<int>(absl::InternalError("x")),
              ::testing::Not(IsOkAndHolds(::testing::_)));
  EXPECT_THAT(absl::InternalError("x"),
              ::testing::Not(StatusIs(absl::StatusCode::kUnknown)));
}

TEST(StatusMatchersTest, AssertOkAndAssign) {
  VRPC_ASSERT_OK_AND_ASSIGN(int v, absl::StatusOr<int>(7));
  EXPECT_EQ(v, 7);
}

}  // namespace
}  // namespace vrpc
