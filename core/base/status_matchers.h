// File: core/base/status_matchers.h
//
// GoogleMock matchers and assertion macros for absl::Status and
// absl::StatusOr<T> (Debian 12's Abseil ships none). Test-only.
//
//   EXPECT_THAT(DoIt(), vrpc::IsOk());
//   EXPECT_THAT(Parse(bytes), vrpc::StatusIs(absl::StatusCode::kInvalidArgument,
//                                            testing::HasSubstr("len")));
//   EXPECT_THAT(Lookup(k), vrpc::IsOkAndHolds(42));
//   VRPC_ASSERT_OK_AND_ASSIGN(auto conn, engine.Connect(...));
#ifndef VRPC_CORE_BASE_STATUS_MATCHERS_H_
#define VRPC_CORE_BASE_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace status_matchers_internal {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOkMatcher, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status;
  return status.ok();
}

template <typename InnerMatcher>
class IsOkAndHoldsMatcher {
 public:
  explicit IsOkAndHoldsMatcher(InnerMatcher inner) : inner_(std::move(inner)) {}

  template <typename StatusOrT>
  operator testing::Matcher<StatusOrT>() const {  // NOLINT
    using Value = typename std::decay_t<StatusOrT>::value_type;
    const testing::Matcher<const Value&> inner =
        testing::SafeMatcherCast<const Value&>(inner_);
    return testing::MakeMatcher(new Impl<StatusOrT, Value>(inner));
  }

 private:
  template <typename StatusOrT, typename Value>
  class Impl : public testing::MatcherInterface<StatusOrT> {
   public:
    explicit Impl(testing::Matcher<const Value&> inner) : inner_(std::move(inner)) {}
    void DescribeTo(std::ostream* os) const override {
      *os << "is OK and has a value that ";
      inner_.DescribeTo(os);
    }
    bool MatchAndExplain(StatusOrT actual,
                         testing::MatchResultListener* listener) const override {
      if (!actual.ok()) {
        *listener << "status is " << actual.status();
        return false;
      }
      return inner_.MatchAndExplain(*actual, listener);
    }

   private:
    testing::Matcher<const Value&> inner_;
  };

  InnerMatcher inner_;
};

}  // namespace status_matchers_internal

// Matches an OK absl::Status or absl::StatusOr<T>.
inline auto IsOk() { return status_matchers_internal::IsOkMatcher(); }

// Matches a Status/StatusOr whose code equals |code| and, optionally, whose
// message matches |message_matcher|.
MATCHER_P(StatusIs, code,
          std::string("has status code ") + absl::StatusCodeToString(code)) {
  const absl::Status& status = status_matchers_internal::GetStatus(arg);
  if (status.code() != code) *result_listener << "status is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has status code ") + absl::StatusCodeToString(code) +
               " and a matching message") {
  const absl::Status& status = status_matchers_internal::GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                     result_listener);
}

// Matches an OK StatusOr<T> whose value matches |inner|.
template <typename InnerMatcher>
status_matchers_internal::IsOkAndHoldsMatcher<InnerMatcher> IsOkAndHolds(
    InnerMatcher inner) {
  return status_matchers_internal::IsOkAndHoldsMatcher<InnerMatcher>(
      std::move(inner));
}

}  // namespace vrpc

#define VRPC_EXPECT_OK(expr) EXPECT_THAT((expr), ::vrpc::IsOk())
#define VRPC_ASSERT_OK(expr) ASSERT_THAT((expr), ::vrpc::IsOk())

// Asserts that |rexpr| (a StatusOr) is OK and moves its value into |lhs|.
#define VRPC_ASSERT_OK_AND_ASSIGN(lhs, rexpr)                           \
  VRPC_ASSERT_OK_AND_ASSIGN_IMPL_(                                      \
      VRPC_STATUS_MACROS_CONCAT_(vrpc_assert_statusor_, __LINE__), lhs, rexpr)

#define VRPC_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  ASSERT_THAT(statusor.status(), ::vrpc::IsOk());             \
  lhs = *std::move(statusor)

#endif  // VRPC_CORE_BASE_STATUS_MATCHERS_H_
