// host_peer: the host side for two-process virtio-user tests that use the
// device's in-process endpoints (core/transport over VsockHost) instead of
// hybrid Unix sockets. It serves one VM's vhost-user vsock device exactly
// as host_agent does (VmServer), plus, in process:
//
//   port 5000  echo: every connection is echoed until EOF (EchoServer)
//   port 5001  sink: reads nothing for 300 ms, then reads everything,
//              checks the probe pattern, and at EOF reports
//              "SINK <bytes> <mismatches>" on stdout
//
// and obeys lines on stdin:
//
//   CONNECT <port> <bytes>   an EchoClient to guest <port>; reports
//                            "DONE <status code> <bytes> <MB/s>"
//
// "READY" on stdout once the vhost-user socket listens. EOF on stdin ends it.
//
//   host_peer --socket PATH --uds-path PATH [--guest-cid N]
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/logging.h"
#include "core/io/uring_reactor.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "host_agent/options.h"
#include "transport_vsock/device/vm_server.h"
#include "transport_vsock/driver/probe_echo.h"

namespace vrpc {
namespace virtio_user_test {
namespace {

using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Port 5001: holds off, then drains and checks.
class Sink {
 public:
  Sink(std::unique_ptr<transport::Listener> listener, io::Reactor& reactor)
      : listener_(std::move(listener)), reactor_(reactor) {
    listener_->SetAcceptHandler([this](std::unique_ptr<Connection> c) { Accept(std::move(c)); });
  }

 private:
  struct Conn {
    std::unique_ptr<Connection> conn;
    bool reading = false;
    uint64_t received = 0;
    uint64_t mismatches = 0;
  };
  void Accept(std::unique_ptr<Connection> c) {
    const int id = next_++;
    Conn& conn = conns_[id];
    conn.conn = std::move(c);
    conn.conn->SetEventHandler([this, id](const ConnectionEvent& e) { OnEvent(id, e); });
    reactor_.RunAfter(absl::Milliseconds(300), [this, id] {
      auto it = conns_.find(id);
      if (it == conns_.end()) return;
      it->second.reading = true;
      Drain(id);
    });
  }
  void OnEvent(int id, const ConnectionEvent& e) {
    if (e.type == ConnectionEventType::kClosed) {
      Drain(id);
      conns_.erase(id);
      return;
    }
    Drain(id);
  }
  void Drain(int id) {
    auto it = conns_.find(id);
    if (it == conns_.end() || !it->second.reading) return;
    Conn& c = it->second;
    for (;;) {
      auto data = c.conn->Read(1 << 20);
      if (!data.ok() || data->empty()) break;
      for (const Slice& s : data->slices()) {
        c.mismatches += vsock::ProbePatternMismatches(c.received, s.data(), s.size());
        c.received += s.size();
      }
    }
    if (c.conn->AtEof() && c.conn->state() != transport::ConnectionState::kClosed) {
      Say(absl::StrCat("SINK ", c.received, " ", c.mismatches));
      (void)c.conn->ShutdownWrite();
      c.reading = false;
    }
  }

  std::unique_ptr<transport::Listener> listener_;
  io::Reactor& reactor_;
  int next_ = 0;
  std::map<int, Conn> conns_;
};

// stdin commands.
class Control {
 public:
  Control(vsock::VsockHost& host, io::UringReactor& reactor) : host_(host), reactor_(reactor) {}

  void OnReadable() {
    char buf[4096];
    const ssize_t n = ::read(0, buf, sizeof(buf));
    if (n <= 0) return reactor_.Stop();
    pending_.append(buf, static_cast<size_t>(n));
    size_t eol;
    while ((eol = pending_.find('\n')) != std::string::npos) {
      Handle(pending_.substr(0, eol));
      pending_.erase(0, eol + 1);
    }
  }

 private:
  void Handle(const std::string& line) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    uint32_t port = 0;
    uint64_t bytes = 0;
    if (words.size() != 3 || words[0] != "CONNECT" || !absl::SimpleAtoi(words[1], &port) ||
        !absl::SimpleAtoi(words[2], &bytes)) {
      return Say("ERROR bad command");
    }
    auto connector = host_.ConnectorTo(port);
    const int id = next_++;
    clients_[id] = std::make_unique<vsock::EchoClient>(
        *connector, bytes, [this, id, bytes](absl::Status s) {
          auto it = clients_.find(id);
          const double secs = absl::ToDoubleSeconds(it->second->elapsed());
          Say(absl::StrCat("DONE ", static_cast<int>(s.code()), " ", it->second->received(), " ",
                           secs > 0 ? static_cast<double>(bytes) / secs / 1e6 : 0.0));
          if (!s.ok()) VRPC_LOG(WARNING) << "host connect: " << s;
          // Destroy on a later turn: we are inside its connection's handler.
          reactor_.Post([this, id] { clients_.erase(id); });
        });
  }

  vsock::VsockHost& host_;
  io::UringReactor& reactor_;
  std::string pending_;
  int next_ = 0;
  std::map<int, std::unique_ptr<vsock::EchoClient>> clients_;
};

int Main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  auto options = host_agent::ParseOptions(std::vector<std::string>(argv + 1, argv + argc));
  VRPC_CHECK(options.ok() && options->vms.size() == 1) << options.status();
  auto reactor = io::UringReactor::Create();
  VRPC_CHECK(reactor.ok()) << reactor.status();
  auto server = vsock::VmServer::Create(options->vms[0], **reactor);
  VRPC_CHECK(server.ok()) << server.status();
  vsock::VsockHost& host = (*server)->device().host();
  auto echo_listener = host.Listen(5000);
  VRPC_CHECK(echo_listener.ok());
  vsock::EchoServer echo(*std::move(echo_listener), UINT64_MAX, [](absl::Status) {});
  auto sink_listener = host.Listen(5001);
  VRPC_CHECK(sink_listener.ok());
  Sink sink(*std::move(sink_listener), **reactor);
  Control control(host, **reactor);
  auto watch = (*reactor)->Watch(0, io::kReadable, [&](uint32_t) { control.OnReadable(); });
  VRPC_CHECK(watch.ok());
  Say("READY");
  absl::Status s = (*reactor)->Run();
  return s.ok() ? 0 : 1;
}

}  // namespace
}  // namespace virtio_user_test
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::virtio_user_test::Main(argc, argv); }
