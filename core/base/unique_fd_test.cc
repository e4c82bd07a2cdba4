#include "core/base/unique_fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFdTest, ClosesOnDestruction) {
  int raw = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  int raw = ::eventfd(0, EFD_CLOEXEC);
  UniqueFd a(raw);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(b.get(), raw);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFdTest, ReleaseDoesNotClose) {
  int raw = ::eventfd(0, EFD_CLOEXEC);
  {
    UniqueFd fd(raw);
    EXPECT_EQ(fd.Release(), raw);
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(UniqueFdTest, ResetClosesPrevious) {
  int first = ::eventfd(0, EFD_CLOEXEC);
  int second = ::eventfd(0, EFD_CLOEXEC);
  UniqueFd fd(first);
  fd.Reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_TRUE(IsOpen(second));
  fd.Reset();
  EXPECT_FALSE(IsOpen(second));
}

TEST(UniqueFdTest, Duplicate) {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
  VRPC_ASSERT_OK_AND_ASSIGN(UniqueFd copy, fd.Duplicate());
  EXPECT_NE(copy.get(), fd.get());
  EXPECT_TRUE(IsOpen(copy.get()));
  EXPECT_THAT(UniqueFd().Duplicate(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace vrpc
