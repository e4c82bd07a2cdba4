// File: tests/agent/agent_processes.cc
#include "tests/agent/agent_processes.h"

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace agent_test {

using virtio_user_test::ChildProcess;
using virtio_user_test::Runfile;
using virtio_user_test::WaitForText;

absl::StatusOr<std::unique_ptr<AgentProcesses>> AgentProcesses::Start() {
  std::unique_ptr<AgentProcesses> p(new AgentProcesses());
  const std::string d = p->dir();
  std::ofstream(d + "/policy") << "allow Exec\nallow PutFile\nallow GetFile\nallow Stat\n"
                                  "allow List\nallow SystemInfo\n"
                                  "limit max_file_bytes 20000000\n";
  auto host = ChildProcess::Spawn(
      {Runfile("host_agent/host_agent"), "--vm",
       absl::StrCat("guest-cid=3,socket=", d, "/vm.vsock,uds-path=", d, "/vm.sock,name=vm1"),
       "--gateway", d + "/gw.sock"},
      d + "/host_agent.log", /*control=*/false);
  if (!host.ok()) return host.status();
  p->host_ = *std::move(host);
  // Its log lines, not the socket files: those appear at bind(), a moment
  // before listen(), when a connect is still refused.
  if (!WaitForText(d + "/host_agent.log", " ready: vhost-user socket", absl::Seconds(20)) ||
      !WaitForText(d + "/host_agent.log", "gRPC gateway on unix:", absl::Seconds(20))) {
    return absl::DeadlineExceededError("the host agent did not get ready (see host_agent.log)");
  }
  auto guest = ChildProcess::Spawn(
      {Runfile("guest_agent/guest_agent"),
       absl::StrCat("--listen=virtio-user:", d, "/vm.vsock:any:1024"), "--policy=" + d + "/policy",
       "--power=log"},
      d + "/guest_agent.log", /*control=*/true);
  if (!guest.ok()) return guest.status();
  p->guest_ = *std::move(guest);
  auto ready = p->guest_->ReadLine(absl::Seconds(30));
  if (!ready.ok()) return ready.status();
  if (ready->rfind("guest agent serving on", 0) != 0) {
    return absl::InternalError("the guest agent said: " + *ready);
  }
  return p;
}

void WriteRandomFile(const std::string& path, uint64_t size, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  std::ofstream(path, std::ios::binary) << data;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace agent_test
}  // namespace vrpc
