// File: guest_agent/system.cc
//
// SystemInfo and Shutdown, and the service's construction.
#include <signal.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "guest_agent/agent_service.h"

namespace vrpc {
namespace guest_agent {
namespace {

// "MemTotal:  16318548 kB" -> bytes; 0 when absent.
uint64_t MeminfoBytes(const std::string& meminfo, const std::string& key) {
  const size_t at = meminfo.find(key + ":");
  if (at == std::string::npos) return 0;
  return std::strtoull(meminfo.c_str() + at + key.size() + 1, nullptr, 10) * 1024;
}

std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void PowerOffOrReboot(agent::ShutdownRequest::Mode mode) {
  ::sync();
  ::reboot(mode == agent::ShutdownRequest::REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
  VRPC_LOG(ERROR) << "reboot(2) failed; the guest keeps running";
}

AgentService::AgentService(AgentOptions options) : options_(std::move(options)) {
  // Writes to a program that closed its stdin, or a forwarded socket the
  // peer closed, must fail with EPIPE, not kill the agent.
  ::signal(SIGPIPE, SIG_IGN);
}

absl::Status AgentService::SystemInfo(rpc::ServerContext* context,
                                      const agent::SystemInfoRequest* request,
                                      agent::SystemInfoResponse* response) {
  struct utsname u;
  if (::uname(&u) == 0) {
    response->set_kernel(absl::StrCat(u.sysname, " ", u.release, " ", u.version, " ", u.machine));
    response->set_hostname(u.nodename);
  }
  response->set_uptime_seconds(std::strtod(ReadSmallFile("/proc/uptime").c_str(), nullptr));
  const std::string meminfo = ReadSmallFile("/proc/meminfo");
  response->set_memory_total_bytes(MeminfoBytes(meminfo, "MemTotal"));
  response->set_memory_available_bytes(MeminfoBytes(meminfo, "MemAvailable"));
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  response->set_cpus(cpus > 0 ? static_cast<uint32_t>(cpus) : 0);
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) == 3) {
    for (double l : load) response->add_load(l);
  }
  response->set_agent_version(options_.version);
  return absl::OkStatus();
}

absl::Status AgentService::Shutdown(rpc::ServerContext* context,
                                    const agent::ShutdownRequest* request,
                                    agent::ShutdownResponse* response) {
  if (!agent::ShutdownRequest::Mode_IsValid(request->mode())) {
    return absl::InvalidArgumentError("unknown shutdown mode");
  }
  const agent::ShutdownRequest::Mode mode = request->mode();
  VRPC_LOG(WARNING) << (mode == agent::ShutdownRequest::REBOOT ? "reboot" : "power off")
                    << " requested by " << context->peer();
  // Answer first: the guest goes away a moment later.
  auto power = options_.power ? options_.power : PowerOffOrReboot;
  std::thread([power, mode] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    power(mode);
  }).detach();
  return absl::OkStatus();
}

}  // namespace guest_agent
}  // namespace vrpc
