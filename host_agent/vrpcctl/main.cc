// File: host_agent/vrpcctl/main.cc
//
// vrpcctl: the operator's CLI. It is a plain gRPC client of the host
// agent's gateway (command_line.h has the commands), so it needs nothing
// but the gateway socket: the host agent picks the VM's transport.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/base/unique_fd.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "host_agent/client/agent_ops.h"
#include "host_agent/vrpcctl/command_line.h"
#include "proto/agent/agent.grpc.pb.h"
#include "proto/health/health.grpc.pb.h"

namespace vrpc {
namespace vrpcctl {
namespace {

// Exit status for failures of vrpcctl or the RPC itself (ssh's convention),
// so `exec` can pass the program's own status through.
constexpr int kFailed = 255;

struct Traits {
  using Stub = agent::Agent::Stub;
  using Context = grpc::ClientContext;
  std::string vm;
  double timeout_seconds = 0;
  std::unique_ptr<Context> NewContext() const {
    auto ctx = std::make_unique<Context>();
    ctx->AddMetadata("vrpc-vm", vm);
    if (timeout_seconds > 0) {
      ctx->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
    }
    return ctx;
  }
  static absl::Status ToStatus(const grpc::Status& s) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
};

std::string Json(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "vrpcctl: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  return kFailed;
}

void WriteAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

int Exec(const CommandLine& c, const Traits& t, agent::Agent::Stub& stub) {
  std::string out, err;
  agent_client::Input input;
  if (c.interactive) {
    input = [](std::string* bytes) {
      bytes->resize(64 * 1024);
      const ssize_t n = ::read(0, bytes->data(), bytes->size());
      if (n <= 0) return false;
      bytes->resize(static_cast<size_t>(n));
      return true;
    };
  }
  auto on_out = [&](const std::string& b) { c.json ? void(out += b) : WriteAll(1, b); };
  auto on_err = [&](const std::string& b) { c.json ? void(err += b) : WriteAll(2, b); };
  auto r = agent_client::Exec(t, stub, c.argv, input, on_out, on_err);
  if (!r.ok()) return Fail(r.status());
  if (c.json) {
    std::printf("{\"exit_code\": %d, \"signal\": %d, \"pid\": %u, \"stdout\": %s, \"stderr\": %s}\n",
                r->exit_code, r->signal, r->pid, Json(out).c_str(), Json(err).c_str());
    return 0;
  }
  return r->signal != 0 ? 128 + r->signal : r->exit_code;
}

// "[#########           ]  45%  12.3 MiB/s" on stderr.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled), start_(absl::Now()) {}
  void Update(uint64_t done, uint64_t total) {
    done_ = done;
    if (!enabled_) return;
    const absl::Time now = absl::Now();
    if (now - last_ < absl::Milliseconds(100) && done != total) return;
    last_ = now;
    const double rate = done / std::max(1e-6, absl::ToDoubleSeconds(now - start_)) / (1 << 20);
    if (total > 0) {
      const int width = 30;
      const int filled = static_cast<int>(width * done / total);
      std::fprintf(stderr, "\r[%s%s] %3d%%  %.1f MiB/s", std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), static_cast<int>(100 * done / total),
                   rate);
    } else {
      std::fprintf(stderr, "\r%.1f MiB  %.1f MiB/s", done / double(1 << 20), rate);
    }
  }
  void Done() {
    if (enabled_) std::fprintf(stderr, "\n");
  }
  double seconds() const { return absl::ToDoubleSeconds(absl::Now() - start_); }
  uint64_t done() const { return done_; }

 private:
  const bool enabled_;
  const absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t done_ = 0;
};

int Copy(const CommandLine& c, const Traits& t, agent::Agent::Stub& stub) {
  ProgressBar bar(!c.json);
  auto progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total); };
  absl::Status s = c.upload ? agent_client::PutFile(t, stub, c.src, c.dst, true, progress)
                            : agent_client::GetFile(t, stub, c.src, c.dst, progress);
  bar.Done();
  if (!s.ok()) return Fail(s);
  const double mib_s = bar.done() / std::max(1e-6, bar.seconds()) / (1 << 20);
  if (c.json) {
    std::printf("{\"bytes\": %llu, \"seconds\": %.6f, \"mib_per_second\": %.3f, "
                "\"checksum\": \"sha256 verified\"}\n",
                static_cast<unsigned long long>(bar.done()), bar.seconds(), mib_s);
  } else {
    std::printf("%s -> %s: %llu bytes in %.2f s (%.1f MiB/s), SHA-256 verified\n",
                c.upload ? c.src.c_str() : (":" + c.src).c_str(),
                c.upload ? (":" + c.dst).c_str() : c.dst.c_str(),
                static_cast<unsigned long long>(bar.done()), bar.seconds(), mib_s);
  }
  return 0;
}

int Info(const CommandLine& c, const Traits& t, agent::Agent::Stub& stub) {
  auto ctx = t.NewContext();
  agent::SystemInfoResponse r;
  grpc::Status s = stub.SystemInfo(ctx.get(), agent::SystemInfoRequest(), &r);
  if (!s.ok()) return Fail(Traits::ToStatus(s));
  if (c.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(r, &json, options);
    std::printf("%s\n", json.c_str());
    return 0;
  }
  std::printf("kernel:   %s\nhostname: %s\nuptime:   %.0f s\nmemory:   %.1f MiB total, %.1f MiB "
              "available\ncpus:     %u\n",
              r.kernel().c_str(), r.hostname().c_str(), r.uptime_seconds(),
              r.memory_total_bytes() / double(1 << 20),
              r.memory_available_bytes() / double(1 << 20), r.cpus());
  if (r.load_size() == 3) {
    std::printf("load:     %.2f %.2f %.2f\n", r.load(0), r.load(1), r.load(2));
  }
  std::printf("agent:    %s\n", r.agent_version().c_str());
  return 0;
}

int Health(const CommandLine& c, const Traits& t, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  auto ctx = t.NewContext();
  grpc::health::v1::HealthCheckResponse r;
  grpc::Status s = stub->Check(ctx.get(), grpc::health::v1::HealthCheckRequest(), &r);
  if (!s.ok()) return Fail(Traits::ToStatus(s));
  const std::string name = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r.status());
  if (c.json) {
    std::printf("{\"status\": %s}\n", Json(name).c_str());
  } else {
    std::printf("%s: %s\n", c.vm.c_str(), name.c_str());
  }
  return r.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int StatOrList(const CommandLine& c, const Traits& t, agent::Agent::Stub& stub) {
  auto ctx = t.NewContext();
  std::vector<agent::FileInfo> entries;
  grpc::Status s;
  bool truncated = false;
  if (c.command == "stat") {
    agent::StatRequest req;
    req.set_path(c.path);
    s = stub.Stat(ctx.get(), req, &entries.emplace_back());
  } else {
    agent::ListRequest req;
    req.set_path(c.path);
    agent::ListResponse r;
    s = stub.List(ctx.get(), req, &r);
    entries.assign(r.entries().begin(), r.entries().end());
    truncated = r.truncated();
  }
  if (!s.ok()) return Fail(Traits::ToStatus(s));
  for (const agent::FileInfo& e : entries) {
    if (c.json) {
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(e, &json);
      std::printf("%s\n", json.c_str());
    } else {
      const char kinds[] = "?-dlo";
      std::printf("%c%04o %12llu  %s\n", kinds[e.type() < 5 ? e.type() : 0], e.mode(),
                  static_cast<unsigned long long>(e.size()), e.name().c_str());
    }
  }
  if (truncated) std::fprintf(stderr, "vrpcctl: the listing was cut at the agent's limit\n");
  return 0;
}

// One forwarded TCP connection: our socket <-> a Forward call.
void ForwardOne(UniqueFd sock, const CommandLine& c, const Traits& t, agent::Agent::Stub& stub) {
  auto ctx = t.NewContext();
  auto stream = stub.Forward(ctx.get());
  agent::ForwardRequest first;
  first.set_port(c.remote_port);
  if (!stream->Write(first)) {
    std::fprintf(stderr, "vrpcctl: forward: %s\n", stream->Finish().error_message().c_str());
    return;
  }
  const int fd = sock.get();
  std::thread up([&] {
    std::string buf(64 * 1024, '\0');
    agent::ForwardRequest req;
    for (;;) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      req.set_data(buf.data(), static_cast<size_t>(n));
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  agent::ForwardResponse r;
  while (stream->Read(&r)) WriteAll(fd, r.data());
  ::shutdown(fd, SHUT_RDWR);
  up.join();
  grpc::Status s = stream->Finish();
  if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
    std::fprintf(stderr, "vrpcctl: forward: %s\n", s.error_message().c_str());
  }
}

int Forward(const CommandLine& c, const Traits& t, agent::Agent::Stub& stub) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(c.local_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener.get(), 16) != 0) {
    return Fail(absl::ErrnoToStatus(errno, absl::StrCat("listen on 127.0.0.1:", c.local_port)));
  }
  std::printf("forwarding 127.0.0.1:%u -> %s:%u (Ctrl-C to stop)\n", c.local_port, c.vm.c_str(),
              c.remote_port);
  std::fflush(stdout);
  for (;;) {
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    std::thread([conn = std::move(conn), &c, &t, &stub]() mutable {
      ForwardOne(std::move(conn), c, t, stub);
    }).detach();
  }
}

int Main(int argc, char** argv) {
  const char* env = std::getenv("VRPC_GATEWAY");
  auto c = ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc), env ? env : "");
  if (!c.ok()) {
    std::fprintf(stderr, "vrpcctl: %s\n\n%s", std::string(c.status().message()).c_str(),
                 Usage().c_str());
    return 2;
  }
  if (c->help) {
    std::printf("%s", Usage().c_str());
    return 0;
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto channel = grpc::CreateChannel("unix:" + c->gateway, grpc::InsecureChannelCredentials());
  auto stub = agent::Agent::NewStub(channel);
  const Traits traits{c->vm, c->timeout_seconds};
  if (c->command == "exec") return Exec(*c, traits, *stub);
  if (c->command == "cp") return Copy(*c, traits, *stub);
  if (c->command == "info") return Info(*c, traits, *stub);
  if (c->command == "health") return Health(*c, traits, channel);
  if (c->command == "forward") return Forward(*c, traits, *stub);
  return StatOrList(*c, traits, *stub);
}

}  // namespace
}  // namespace vrpcctl
}  // namespace vrpc

int main(int argc, char** argv) { return vrpc::vrpcctl::Main(argc, argv); }
