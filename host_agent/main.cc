// The vrpc host agent: vhost-user vsock devices for one or more VMs, a
// directory of their guest agents, and a gRPC gateway to those.
//
//   bazel run //host_agent -- --guest-cid 3 --socket /tmp/vm3.vsock --uds-path /tmp/vm3.sock
//       [--gateway /tmp/vrpc-gateway.sock]
//
// Logs one line per VM when it is ready, runs until SIGINT or SIGTERM, then
// closes every connection and removes its sockets.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/base/logging.h"
#include "core/base/unique_fd.h"
#include "core/io/uring_reactor.h"
#include "absl/strings/str_cat.h"
#include "host_agent/directory.h"
#include "host_agent/gateway.h"
#include "host_agent/options.h"
#include "transport_vsock/device/vm_server.h"
#include "transport_vsock/dial/dial.h"

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
  std::vector<std::shared_ptr<vsock::VmServer>> servers;
  Directory directory(**reactor);
  for (const VmSpec& vm : options->vms) {
    // Through the dial layer, so vhost-user: addresses (the directory's)
    // reach this very device.
    auto server = dial::ServeVm(vm, **reactor);
    if (!server.ok()) {
      VRPC_LOG(ERROR) << "vm " << vm.guest_cid << ": " << server.status();
      return 1;
    }
    servers.push_back(*std::move(server));
    const std::string& name = options->vm_names.at(vm.guest_cid);
    if (absl::Status s = directory.Add(name, absl::StrCat("vhost-user:", vm.socket, ":",
                                                          vm.guest_cid, ":", options->agent_port));
        !s.ok()) {
      VRPC_LOG(ERROR) << s;
      return 2;
    }
    VRPC_LOG(INFO) << "vm " << vm.guest_cid << " ready: vhost-user socket " << vm.socket
                   << ", hybrid socket " << vm.uds_path << ", named " << name;
  }
  for (const auto& [name, address] : options->guests) {
    if (absl::Status s = directory.Add(name, address); !s.ok()) {
      VRPC_LOG(ERROR) << "--guest " << name << ": " << s;
      return 2;
    }
  }
  std::unique_ptr<Gateway> gateway;
  if (!options->gateway.empty()) {
    auto started = Gateway::Start(options->gateway, directory);
    if (!started.ok()) {
      VRPC_LOG(ERROR) << "gateway: " << started.status();
      return 1;
    }
    gateway = *std::move(started);
    VRPC_LOG(INFO) << "gRPC gateway on unix:" << options->gateway;
  }
  // Shutdown needs the loop running (channels and calls end on it), so it
  // runs on its own thread and stops the loop last.
  std::thread stopper;
  auto watch = (*reactor)->Watch(signal_fd.get(), io::kReadable, [&](uint32_t) {
    signalfd_siginfo info;
    if (::read(signal_fd.get(), &info, sizeof(info)) == sizeof(info)) {
      VRPC_LOG(INFO) << "signal " << info.ssi_signo << ": shutting down";
    }
    if (stopper.joinable()) return;
    stopper = std::thread([&] {
      gateway.reset();
      directory.Shutdown();
      (*reactor)->Stop();
    });
  });
  if (!watch.ok()) return 1;
  absl::Status run = (*reactor)->Run();
  if (stopper.joinable()) stopper.join();
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
