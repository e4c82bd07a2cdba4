// The vrpc host agent: vhost-user vsock devices for one or more VMs.
//
//   bazel run //host_agent -- --guest-cid 3 --socket /tmp/vm3.vsock --uds-path /tmp/vm3.sock
//
// Logs one line per VM when it is ready, runs until SIGINT or SIGTERM, then
// closes every connection and removes its sockets.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/base/logging.h"
#include "core/base/unique_fd.h"
#include "core/io/uring_reactor.h"
#include "host_agent/options.h"
#include "transport_vsock/device/vm_server.h"

namespace vrpc {
namespace host_agent {
namespace {

int Main(int argc, char** argv) {
  auto options = ParseOptions(std::vector<std::string>(argv + 1, argv + argc));
  if (!options.ok()) {
    std::fprintf(stderr, "host_agent: %s\n\n%s", std::string(options.status().message()).c_str(),
                 Usage().c_str());
    return 2;
  }
  if (options->help) {
    std::printf("%s", Usage().c_str());
    return 0;
  }
  // SIGPIPE: a host client closing its socket mid-write is an ordinary error.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  UniqueFd signal_fd(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd.valid()) {
    VRPC_LOG(ERROR) << "signalfd failed";
    return 1;
  }

  auto reactor = io::UringReactor::Create();
  if (!reactor.ok()) {
    VRPC_LOG(ERROR) << "io_uring: " << reactor.status();
    return 1;
  }
  std::vector<std::unique_ptr<vsock::VmServer>> servers;
  for (const VmSpec& vm : options->vms) {
    auto server = vsock::VmServer::Create(vm, **reactor);
    if (!server.ok()) {
      VRPC_LOG(ERROR) << "vm " << vm.guest_cid << ": " << server.status();
      return 1;
    }
    servers.push_back(*std::move(server));
    VRPC_LOG(INFO) << "vm " << vm.guest_cid << " ready: vhost-user socket " << vm.socket
                   << ", hybrid socket " << vm.uds_path;
  }
  auto watch = (*reactor)->Watch(signal_fd.get(), io::kReadable, [&](uint32_t) {
    signalfd_siginfo info;
    if (::read(signal_fd.get(), &info, sizeof(info)) == sizeof(info)) {
      VRPC_LOG(INFO) << "signal " << info.ssi_signo << ": shutting down";
    }
    (*reactor)->Stop();
  });
  if (!watch.ok()) return 1;
  absl::Status run = (*reactor)->Run();
  servers.clear();  // closes connections, removes sockets
  if (!run.ok()) {
    VRPC_LOG(ERROR) << "event loop: " << run;
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace host_agent
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::host_agent::Main(argc, argv); }
