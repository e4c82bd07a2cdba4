// The vsock protocol demo: the seed document's connect() path, played by two
// vrpc protocol engines back to back (host CID 2, guest CID 3). Every packet
// that would cross the virtqueues is printed, with the state change it
// causes on the receiving side.
//
//   bazel run //examples/protocol_demo -- [--bytes=N] [--buf_alloc=N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_format.h"
#include "transport_vsock/loopback/loopback.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace {

constexpr uint32_t kPort = 9999;

struct Flags {
  uint32_t bytes = 200 * 1024;
  uint32_t buf_alloc = 64 * 1024;
};

bool ParseFlags(int argc, char** argv, Flags& flags) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    uint32_t* target = nullptr;
    if (absl::ConsumePrefix(&arg, "--bytes=")) target = &flags.bytes;
    if (absl::ConsumePrefix(&arg, "--buf_alloc=")) target = &flags.buf_alloc;
    if (target == nullptr || !absl::SimpleAtoi(arg, target)) {
      std::fprintf(stderr, "usage: %s [--bytes=N] [--buf_alloc=N]\n", argv[0]);
      return false;
    }
  }
  return true;
}

// Prints the events a side produced since the last call.
class Narrator {
 public:
  explicit Narrator(LoopbackLink& link) : link_(link) {}

  void Events() {
    for (Side side : {Side::kHost, Side::kGuest}) {
      LoopbackEndpoint& ep = link_.endpoint(side);
      size_t& seen = side == Side::kHost ? host_seen_ : guest_seen_;
      for (; seen < ep.events().size(); ++seen) {
        const Event& e = ep.events()[seen];
        std::string what = EventTypeName(e.type);
        const bool state_change = e.type == EventType::kConnected ||
                                  e.type == EventType::kRefused ||
                                  e.type == EventType::kReset || e.type == EventType::kClosed;
        if (state_change) {
          auto info = ep.Info(e.conn);
          if (info.ok()) what += " -> " + ConnStateName(info->state);
        }
        if (e.type == EventType::kIncoming) what += absl::StrFormat(" on port %d", e.port);
        if (!e.status.ok()) what += " (" + e.status.ToString() + ")";
        std::printf("        %-5s event: %s\n", SideName(side).c_str(), what.c_str());
      }
    }
  }

  static void Say(const std::string& line) { std::printf("\n%s\n", line.c_str()); }

 private:
  LoopbackLink& link_;
  size_t host_seen_ = 0;
  size_t guest_seen_ = 0;
};

int Run(const Flags& flags) {
  LoopbackLink::Options options;
  options.host.buf_alloc = flags.buf_alloc;
  options.guest.buf_alloc = flags.buf_alloc;
  auto created = LoopbackLink::Create(options);
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
    return 1;
  }
  LoopbackLink& link = **created;
  Narrator narrator(link);
  size_t rw_packets = 0;
  link.SetTrace([&](Side from, const Packet& p) {
    if (p.header.op_code() == Op::kRw && ++rw_packets > 3) {
      if (rw_packets == 4) std::printf("  ... (further RW packets not shown)\n");
      return;
    }
    std::printf("  %-5s -> %-5s  %s\n", SideName(from).c_str(),
                SideName(from == Side::kHost ? Side::kGuest : Side::kHost).c_str(),
                HeaderToString(p.header).c_str());
  });
  auto pump = [&] {
    while (link.Pump(1) > 0) narrator.Events();
  };

  std::printf("vrpc protocol demo: virtio-vsock between a host (CID 2) and a guest (CID 3)\n");
  std::printf("each line below is one packet as it would cross the virtqueues\n");

  Narrator::Say("host: listen(port 9999)");
  if (!link.host().Listen(kPort).ok()) return 1;

  Narrator::Say("guest: connect(CID 2, port 9999)  [vsock_stream_connect -> "
                "virtio_transport_connect: OP_REQUEST]");
  auto g = link.guest().Connect(kPort);
  if (!g.ok()) return 1;
  std::printf("        guest state: %s (OP_REQUEST outstanding)\n",
              ConnStateName(link.guest().Info(*g)->state).c_str());
  pump();
  auto h = link.host().Accept(kPort);
  if (!h.has_value()) return 1;
  std::printf("        host accept() -> connection on port %d\n", link.host().Info(*h)->local_port);

  Narrator::Say(absl::StrFormat("guest: write %d bytes; host buf_alloc is %d", flags.bytes,
                                flags.buf_alloc));
  std::string data(flags.bytes, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  SliceChain pending(Slice::Copy(data));
  std::string received;
  while (received.size() < data.size()) {
    if (!pending.empty() && !link.guest().Send(*g, pending).ok()) return 1;
    pump();
    auto chunk = link.host().Read(*h);
    if (!chunk.ok()) return 1;
    received += *chunk;
    pump();
  }
  auto credit = link.guest().Info(*g)->credit;
  std::printf("        host read %zu bytes, %s; %zu RW packets; guest tx_cnt=%d peer_fwd_cnt=%d\n",
              received.size(), received == data ? "content verified" : "CONTENT MISMATCH",
              rw_packets, credit.tx_cnt, credit.peer_fwd_cnt);

  Narrator::Say("guest: close()  [SHUTDOWN(RCV|SEND), then the host answers RST]");
  link.guest().Close(*g);
  pump();
  std::printf("        host sees EOF: %s\n", link.host().AtEof(*h) ? "yes" : "no");
  link.host().Close(*h);

  Narrator::Say("guest: connect(CID 2, port 4242), where nothing listens");
  auto refused = link.guest().Connect(4242);
  if (!refused.ok()) return 1;
  pump();
  link.guest().Close(*refused);

  const bool ok = received == data;
  std::printf("\n%s\n", ok ? "demo OK" : "demo FAILED");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc

int main(int argc, char** argv) {
  vrpc::vsock::Flags flags;
  if (!vrpc::vsock::ParseFlags(argc, argv, flags)) return 2;
  return vrpc::vsock::Run(flags);
}
