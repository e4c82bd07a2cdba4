// Fuzz target: two protocol engines over the loopback link, driven by a
// random sequence of application calls, timer advances, raw packets from a
// hostile peer, and rewrites of packets in flight.
//
// Invariants checked after every step:
//  - nothing crashes, and every Pump() terminates (no RST/packet ping-pong);
//  - bytes buffered on a connection never exceed the credit that side gave
//    (its buf_alloc), and bytes in flight never exceed the sender's window;
//  - connection records stay within max_connections;
//  - while no packet was injected or rewritten, every byte a stream reads is
//    the byte its peer wrote at that offset (no loss, duplication, reorder).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/base/logging.h"
#include "transport_vsock/loopback/loopback.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace {

constexpr size_t kMaxConnections = 16;
constexpr uint32_t kMaxBufAlloc = 8192;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(Byte() | (Byte() << 8)); }
  uint32_t U32() { return U16() | (static_cast<uint32_t>(U16()) << 16); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The byte a sender writes at |offset| of the stream from |src| to |dst|.
uint8_t PatternByte(uint64_t offset, uint32_t src, uint32_t dst) {
  return static_cast<uint8_t>(offset * 131 + src * 7 + dst * 13 + (offset >> 8));
}

struct ConnState {
  ConnId id;
  uint64_t written = 0;
  uint64_t read = 0;
};

class Harness {
 public:
  explicit Harness(Input& in) : in_(in) {
    LoopbackLink::Options options;
    for (EngineConfig* c : {&options.host, &options.guest}) {
      c->buf_alloc = 4096;
      c->max_tx_window = 4096;
      c->max_packet_payload = 1024;
      c->credit_update_threshold = 1024;
      c->copy_below = 64;
      c->max_connections = kMaxConnections;
      c->ephemeral_port_first = 1024;
      c->ephemeral_port_last = 1040;
    }
    link_ = *LoopbackLink::Create(options);
    link_->SetTap([this](Side, Packet& p) { return Tap(p); });
  }

  void Run() {
    while (!in_.empty()) {
      Step(in_.Byte() % 18);
      CheckInvariants();
    }
    link_->Pump();
    CheckInvariants();
  }

 private:
  LoopbackEndpoint& Pick() { return (in_.Byte() & 1) ? link_->host() : link_->guest(); }

  std::vector<ConnState>& Conns(LoopbackEndpoint& ep) {
    return ep.side() == Side::kHost ? host_conns_ : guest_conns_;
  }

  ConnState* PickConn(LoopbackEndpoint& ep) {
    auto& conns = Conns(ep);
    if (conns.empty()) return nullptr;
    return &conns[in_.Byte() % conns.size()];
  }

  SocketType PickType() {
    return (in_.Byte() & 3) == 0 ? SocketType::kSeqpacket : SocketType::kStream;
  }

  void Step(uint8_t op) {
    LoopbackEndpoint& ep = Pick();
    switch (op) {
      case 0: {
        auto id = ep.Connect(100 + in_.Byte() % 4, PickType());
        if (id.ok()) Conns(ep).push_back({*id});
        break;
      }
      case 1:
        (void)ep.Listen(100 + in_.Byte() % 4, 1 + in_.Byte() % 4, PickType());
        break;
      case 2: {
        auto id = ep.Accept(100 + in_.Byte() % 4);
        if (id.has_value()) Conns(ep).push_back({*id});
        break;
      }
      case 3: Write(ep); break;
      case 4: Read(ep); break;
      case 5:
        if (ConnState* c = PickConn(ep)) (void)ep.Shutdown(c->id, in_.Byte() % 4);
        break;
      case 6: Close(ep); break;
      case 7: link_->AdvanceTime(absl::Milliseconds(in_.U16())); break;
      case 8: link_->Pump(in_.Byte()); break;
      case 9: InjectRaw(ep); break;
      case 10: mutate_next_ = in_.Byte(); break;
      case 11:
        if (ConnState* c = PickConn(ep)) {
          (void)ep.SetBufferSize(c->id, in_.U16() % kMaxBufAlloc);
        }
        break;
      case 12:
        if (ConnState* c = PickConn(ep)) {
          (void)ep.SendMessage(c->id, std::string(in_.U16() % 6000, 'm'), in_.Byte() & 1);
        }
        break;
      case 13:
        if (ConnState* c = PickConn(ep)) (void)ep.ReadMessage(c->id);
        break;
      case 14: {
        Actions out;
        ep.engine().ResetAll(absl::UnavailableError("fuzz reset"), out);
        tainted_ = true;  // the peer never hears of it
        break;
      }
      case 15: (void)ep.engine().ListenAnyPort(PickType(), 1 + in_.Byte() % 4); break;
      case 16: AnswerAnyPort(ep); break;
      default: ep.Unlisten((in_.Byte() & 1) ? kPortAny : 100 + in_.Byte() % 4); break;
    }
  }

  void Write(LoopbackEndpoint& ep) {
    ConnState* c = PickConn(ep);
    if (c == nullptr) return;
    auto info = ep.Info(c->id);
    if (!info.ok() || info->type != SocketType::kStream) return;
    const size_t n = in_.U16() % 10000;
    std::string data(n, '\0');
    for (size_t i = 0; i < n; ++i) {
      data[i] = static_cast<char>(PatternByte(c->written + i, info->local_port, info->peer_port));
    }
    auto sent = ep.Write(c->id, data);
    if (sent.ok()) c->written += *sent;
  }

  void Read(LoopbackEndpoint& ep) {
    ConnState* c = PickConn(ep);
    if (c == nullptr) return;
    auto info = ep.Info(c->id);
    if (!info.ok() || info->type != SocketType::kStream) return;
    auto got = ep.Read(c->id, in_.U16());
    if (!got.ok()) return;
    for (unsigned char byte : *got) {
      if (!tainted_) {
        VRPC_CHECK(byte == PatternByte(c->read, info->peer_port, info->local_port))
            << "stream corrupted at offset " << c->read;
      }
      ++c->read;
    }
  }

  // Takes a request from the any-port listener and answers or refuses it.
  void AnswerAnyPort(LoopbackEndpoint& ep) {
    auto id = ep.Accept(kPortAny);
    if (!id.has_value()) return;
    if (in_.Byte() & 1) {
      Actions out;
      (void)ep.engine().Respond(*id, out);
      // Hand the RESPONSE to the link the way the endpoint would.
      for (Packet& p : out.packets) link_->Inject(ep.side(), std::move(p));
      Conns(ep).push_back({*id});
    } else {
      ep.Close(*id);
    }
  }

  void Close(LoopbackEndpoint& ep) {
    auto& conns = Conns(ep);
    if (conns.empty()) return;
    const size_t i = in_.Byte() % conns.size();
    ep.Close(conns[i].id);
    conns.erase(conns.begin() + i);
  }

  // A packet from a hostile peer: arbitrary fields, mostly well addressed.
  void InjectRaw(LoopbackEndpoint& from) {
    Packet p;
    p.header.src_cid = from.engine().config().local_cid;
    p.header.dst_cid = from.engine().config().peer_cid;
    if ((in_.Byte() & 7) == 0) p.header.src_cid = in_.U32();
    p.header.src_port = (in_.Byte() & 1) ? 100 + in_.Byte() % 4 : 1024 + in_.Byte() % 17;
    p.header.dst_port = (in_.Byte() & 1) ? 100 + in_.Byte() % 4 : 1024 + in_.Byte() % 17;
    p.header.type = in_.Byte() % 4;
    p.header.op = in_.Byte() % 9;
    p.header.flags = in_.Byte() % 8;
    p.header.buf_alloc = in_.U32();
    p.header.fwd_cnt = (in_.Byte() & 1) ? in_.U32() : in_.Byte();
    const uint32_t len = in_.U16() % 2048;
    p.header.len = (in_.Byte() & 7) == 0 ? in_.U32() : len;
    if (len > 0) p.payload.Append(Slice::Copy(std::string(len, 'i')));
    link_->Inject(from.side(), std::move(p));
    tainted_ = true;
  }

  LoopbackLink::TapVerdict Tap(Packet& p) {
    if (mutate_next_ == 0) return LoopbackLink::TapVerdict::kDeliver;
    const uint8_t how = mutate_next_;
    mutate_next_ = 0;
    tainted_ = true;
    switch (how % 6) {
      case 0: return LoopbackLink::TapVerdict::kDrop;
      case 1: p.header.fwd_cnt += how; break;
      case 2: p.header.buf_alloc = how * 97u; break;
      case 3: p.header.op = how % 9; break;
      case 4: p.header.len += how; break;
      default: p.header.flags ^= how; break;
    }
    return LoopbackLink::TapVerdict::kDeliver;
  }

  void CheckInvariants() {
    for (LoopbackEndpoint* ep : {&link_->host(), &link_->guest()}) {
      VRPC_CHECK(ep->engine().stats().connections <= kMaxConnections);
      for (const ConnState& c : Conns(*ep)) {
        auto info = ep->Info(c.id);
        if (!info.ok()) continue;
        VRPC_CHECK(info->credit.buffered <= kMaxBufAlloc)
            << "buffered " << info->credit.buffered << " beyond any credit given";
        VRPC_CHECK(info->credit.tx_cnt - info->credit.peer_fwd_cnt <= 4096)
            << "in flight beyond the window";
        VRPC_CHECK(info->credit.peer_credit <= 4096);
      }
    }
  }

  Input& in_;
  std::unique_ptr<LoopbackLink> link_;
  std::vector<ConnState> host_conns_;
  std::vector<ConnState> guest_conns_;
  uint8_t mutate_next_ = 0;
  bool tainted_ = false;
};

}  // namespace
}  // namespace vsock
}  // namespace vrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vrpc::SetMinLogSeverity(vrpc::LogSeverity::kError);
  vrpc::vsock::Input in(data, size);
  vrpc::vsock::Harness harness(in);
  harness.Run();
  return 0;
}
