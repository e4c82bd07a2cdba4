// File: tests/agent/capi_test.cc
//
// The C ABI (host_agent/capi/vrpc.h), driven by C code (capi_smoke.c)
// against the guest agent of agent_processes.h through the host agent's
// hybrid socket: health, exec with and without stdin, system info as
// JSON, a 4 MiB copy in and out, and a status code for a missing program.
#include <string>

#include "core/base/sha256.h"
#include "gtest/gtest.h"
#include "tests/agent/agent_processes.h"

extern "C" int vrpc_capi_smoke(const char* address, const char* local_file,
                               const char* remote_file, const char* back_file, char* why,
                               size_t why_len);

namespace vrpc {
namespace {

TEST(CapiTest, EmbedderCallsFromC) {
  auto p = agent_test::AgentProcesses::Start();
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string d = (*p)->dir();
  agent_test::WriteRandomFile(d + "/c.in", 4 << 20, 9);
  char why[512] = {0};
  ASSERT_EQ(vrpc_capi_smoke((*p)->hybrid_address().c_str(), (d + "/c.in").c_str(),
                            (d + "/c.guest").c_str(), (d + "/c.back").c_str(), why, sizeof(why)),
            0)
      << why;
  EXPECT_EQ(Sha256::Of(agent_test::ReadFile(d + "/c.back")),
            Sha256::Of(agent_test::ReadFile(d + "/c.in")));
}

}  // namespace
}  // namespace vrpc
