// File: guest_agent/policy_test.cc
#include "guest_agent/policy.h"

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace guest_agent {
namespace {

using ::testing::HasSubstr;

TEST(PolicyTest, DefaultIsReadOnlyAndHostOnly) {
  Policy p;
  VRPC_EXPECT_OK(p.Authorize("/vrpc.agent.Agent/SystemInfo"));
  VRPC_EXPECT_OK(p.Authorize("/vrpc.agent.Agent/GetFile"));
  VRPC_EXPECT_OK(p.Authorize("/grpc.health.v1.Health/Check"));
  for (const char* m : {"Exec", "PutFile", "Shutdown", "Forward"}) {
    EXPECT_THAT(p.Authorize(std::string("/vrpc.agent.Agent/") + m),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(m)));
  }
  EXPECT_THAT(p.Authorize("/other.Svc/SystemInfo"), StatusIs(absl::StatusCode::kPermissionDenied));
  VRPC_EXPECT_OK(p.AcceptPeer("vsock:2:1035"));
  EXPECT_THAT(p.AcceptPeer("vsock:3:1035"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(p.AcceptPeer("unix:/tmp/x"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(p.AcceptPeer("garbage"), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(PolicyTest, FileAllowsAndLimits) {
  auto p = Policy::Parse(
      "# exec and writes on\n"
      "allow Exec\n"
      "allow PutFile   # comment\n"
      "allow-cid 3\n"
      "allow-cid 2\n"
      "allow-unix\n"
      "limit max_file_bytes 1000\n"
      "limit max_message_bytes 65536\n");
  ASSERT_THAT(p, IsOk());
  VRPC_EXPECT_OK(p->Authorize("/vrpc.agent.Agent/Exec"));
  VRPC_EXPECT_OK(p->Authorize("/vrpc.agent.Agent/PutFile"));
  // A file is default-deny: what it does not list is off.
  EXPECT_FALSE(p->Authorize("/vrpc.agent.Agent/SystemInfo").ok());
  VRPC_EXPECT_OK(p->AcceptPeer("vsock:3:9"));
  VRPC_EXPECT_OK(p->AcceptPeer("vsock:2:9"));
  EXPECT_FALSE(p->AcceptPeer("vsock:4:9").ok());
  VRPC_EXPECT_OK(p->AcceptPeer("unix:/tmp/x"));
  EXPECT_EQ(p->limits().max_file_bytes, 1000u);
  EXPECT_EQ(p->limits().max_message_bytes, 65536u);

  auto all = Policy::Parse("allow *\n");
  ASSERT_THAT(all, IsOk());
  VRPC_EXPECT_OK(all->Authorize("/vrpc.agent.Agent/Shutdown"));
  VRPC_EXPECT_OK(all->AcceptPeer("vsock:2:1"));  // the CID default stays
}

TEST(PolicyTest, RejectsWhatItCannotRead) {
  for (const char* bad : {"allow Everything\n", "permit Exec\n", "allow-cid two\n",
                          "limit max_file_bytes 0\n", "limit colour 5\n", "allow\n",
                          "limit max_message_bytes 99999999999\n"}) {
    auto p = Policy::Parse(bad);
    EXPECT_THAT(p.status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")))
        << bad;
  }
  EXPECT_THAT(Policy::Load("/nonexistent/policy").status(),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace guest_agent
}  // namespace vrpc
