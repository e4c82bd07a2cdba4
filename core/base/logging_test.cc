#include "core/base/logging.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](LogSeverity s, absl::string_view line) {
      lines_.emplace_back(line);
      severities_.push_back(s);
    });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetMinLogSeverity(LogSeverity::kInfo);
  }
  std::vector<std::string> lines_;
  std::vector<LogSeverity> severities_;
};

TEST_F(LoggingTest, FormatsFileLineAndMessage) {
  VRPC_LOG(WARNING) << "vm " << 3 << " ready";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], HasSubstr("logging_test.cc:"));
  EXPECT_THAT(lines_[0], HasSubstr("] vm 3 ready"));
  EXPECT_EQ(lines_[0][0], 'W');
  EXPECT_THAT(severities_, ElementsAre(LogSeverity::kWarning));
}

TEST_F(LoggingTest, FiltersBelowMinimumWithoutEvaluating) {
  SetMinLogSeverity(LogSeverity::kError);
  int evaluated = 0;
  VRPC_LOG(INFO) << "hidden " << ++evaluated;
  VRPC_LOG(ERROR) << "shown";
  EXPECT_EQ(evaluated, 0);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], HasSubstr("shown"));
}

TEST_F(LoggingTest, CheckPassesSilently) {
  VRPC_CHECK(1 + 1 == 2) << "never printed";
  EXPECT_TRUE(lines_.empty());
}

TEST(LoggingDeathTest, CheckFailureAborts) {
  EXPECT_DEATH({ VRPC_CHECK(false) << "the reason"; }, "Check failed: false the reason");
}

}  // namespace
}  // namespace vrpc
