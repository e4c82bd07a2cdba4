#include "transport_vsock/protocol/engine.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "transport_vsock/wire/validate.h"

namespace vrpc {
namespace vsock {

struct Engine::Connection {
  Connection(ConnId id_in, SocketType type_in, uint32_t local, uint32_t peer,
             const EngineConfig& config)
      : id(id_in),
        type(type_in),
        local_port(local),
        peer_port(peer),
        credit(config.buf_alloc, config.max_tx_window),
        rx(config.copy_below) {}

  const ConnId id;
  const SocketType type;
  const uint32_t local_port;
  const uint32_t peer_port;
  ConnState state = ConnState::kConnecting;
  // The application holds |id| (after Connect or Accept, until Close).
  bool owned_by_app = false;
  // Closed by the application; finishing the close handshake unseen.
  bool lingering = false;
  // Set while waiting in a listener's accept queue.
  std::optional<uint32_t> accept_port;
  // An any-port request we have not answered yet (see ListenAnyPort).
  bool awaiting_response = false;
  uint32_t local_shutdown = 0;
  uint32_t peer_shutdown = 0;
  CreditAccount credit;
  RxQueue rx;
  bool blocked = false;
  uint32_t blocked_want = 0;
  absl::Time blocked_since;
  absl::Duration blocked_total;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Status status;
};

std::string EventTypeName(EventType type) {
  switch (type) {
    case EventType::kConnected: return "connected";
    case EventType::kRefused: return "refused";
    case EventType::kIncoming: return "incoming";
    case EventType::kReadable: return "readable";
    case EventType::kCreditBlocked: return "credit-blocked";
    case EventType::kCreditRestored: return "credit-restored";
    case EventType::kPeerShutdown: return "peer-shutdown";
    case EventType::kReset: return "reset";
    case EventType::kClosed: return "closed";
  }
  return "?";
}

std::string ConnStateName(ConnState state) {
  switch (state) {
    case ConnState::kConnecting: return "CONNECTING";
    case ConnState::kEstablished: return "ESTABLISHED";
    case ConnState::kClosed: return "CLOSED";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Construction

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config) {
  const bool host_to_guest =
      config.local_cid == kCidHost && IsValidGuestCid(config.peer_cid);
  const bool guest_to_host =
      config.peer_cid == kCidHost && IsValidGuestCid(config.local_cid);
  if (!host_to_guest && !guest_to_host) {
    return absl::InvalidArgumentError(absl::StrCat(
        "engine CIDs must be the host (2) and a valid guest CID; got local ",
        config.local_cid, " peer ", config.peer_cid));
  }
  if (config.buf_alloc == 0 || config.max_tx_window == 0 ||
      config.credit_update_threshold == 0 || config.max_connections == 0) {
    return absl::InvalidArgumentError("engine sizes must be non-zero");
  }
  if (config.max_packet_payload == 0 || config.max_packet_payload > kMaxPacketPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_packet_payload must be in [1, ", kMaxPacketPayload, "]"));
  }
  if (config.connect_timeout <= absl::ZeroDuration() ||
      config.close_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeouts must be positive");
  }
  if (config.ephemeral_port_first > config.ephemeral_port_last ||
      config.ephemeral_port_last >= kPortAny) {
    return absl::InvalidArgumentError("bad ephemeral port range");
  }
  return absl::WrapUnique(new Engine(config));
}

Engine::Engine(const EngineConfig& config) : config_(config) {
  const uint64_t range =
      uint64_t{config.ephemeral_port_last} - config.ephemeral_port_first + 1;
  port_cursor_ = static_cast<uint32_t>(config.port_seed % range);
}

Engine::~Engine() = default;

absl::Status Engine::SetLocalCid(uint64_t cid) {
  if (config_.peer_cid != kCidHost || !IsValidGuestCid(cid)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot adopt local CID ", cid));
  }
  config_.local_cid = cid;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Application calls

absl::StatusOr<ConnId> Engine::Connect(uint32_t peer_port, SocketType type,
                                       absl::Time now, Actions& out,
                                       uint32_t local_port) {
  if (peer_port == kPortAny || local_port == kPortAny) {
    return absl::InvalidArgumentError("port VMADDR_PORT_ANY");
  }
  if (conns_.size() >= config_.max_connections) {
    return absl::ResourceExhaustedError("connection limit reached");
  }
  if (local_port == 0) {
    absl::StatusOr<uint32_t> port = PickEphemeralPort();
    if (!port.ok()) return port.status();
    local_port = *port;
  } else if (LocalPortInUse(local_port) || by_ports_.contains({local_port, peer_port})) {
    return absl::AlreadyExistsError(absl::StrCat("local port ", local_port, " in use"));
  }
  Connection& c = NewConnection(type, local_port, peer_port);
  c.owned_by_app = true;
  bound_ports_[local_port] = c.id;
  by_ports_[{local_port, peer_port}] = c.id;
  Emit(c, Op::kRequest, 0, {}, out);
  SetDeadline(c, now + config_.connect_timeout);
  return c.id;
}

absl::Status Engine::Listen(uint32_t port, SocketType type, size_t backlog) {
  if (port == kPortAny) return absl::InvalidArgumentError("port VMADDR_PORT_ANY");
  if (backlog == 0) return absl::InvalidArgumentError("backlog must be > 0");
  if (LocalPortInUse(port)) {
    return absl::AlreadyExistsError(absl::StrCat("port ", port, " in use"));
  }
  listeners_[port] = Listener{type, backlog, {}};
  return absl::OkStatus();
}

absl::Status Engine::ListenAnyPort(SocketType type, size_t backlog) {
  if (backlog == 0) return absl::InvalidArgumentError("backlog must be > 0");
  if (listeners_.contains(kPortAny)) {
    return absl::AlreadyExistsError("an any-port listener exists");
  }
  Listener listener{type, backlog, {}};
  listener.defer_response = true;
  listeners_[kPortAny] = std::move(listener);
  return absl::OkStatus();
}

absl::Status Engine::Respond(ConnId id, Actions& out) {
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  if (!c.awaiting_response || c.state != ConnState::kConnecting) {
    return absl::FailedPreconditionError("connection is not waiting for an answer");
  }
  c.awaiting_response = false;
  c.state = ConnState::kEstablished;
  SetDeadline(c, absl::InfiniteFuture());
  Emit(c, Op::kResponse, 0, {}, out);
  return absl::OkStatus();
}

void Engine::Unlisten(uint32_t port, Actions& out) {
  auto it = listeners_.find(port);
  if (it == listeners_.end()) return;
  std::deque<ConnId> pending = std::move(it->second.pending);
  listeners_.erase(it);
  for (ConnId id : pending) {
    Connection* c = Find(id);
    if (c == nullptr) continue;
    c->accept_port.reset();
    Emit(*c, Op::kRst, 0, {}, out);
    Release(id);
  }
}

std::optional<ConnId> Engine::Accept(uint32_t port) {
  auto it = listeners_.find(port);
  if (it == listeners_.end() || it->second.pending.empty()) return std::nullopt;
  ConnId id = it->second.pending.front();
  it->second.pending.pop_front();
  Connection* c = Find(id);
  VRPC_CHECK(c != nullptr) << "accept queue holds a released connection";
  c->accept_port.reset();
  c->owned_by_app = true;
  return id;
}

absl::Status Engine::CheckWritable(const Connection& c) const {
  if (c.state == ConnState::kClosed) {
    return c.status.ok() ? absl::FailedPreconditionError("connection closed")
                         : absl::UnavailableError(c.status.message());
  }
  if (c.state == ConnState::kConnecting) {
    return absl::FailedPreconditionError("not connected yet");
  }
  if (c.local_shutdown & kShutdownSend) {
    return absl::FailedPreconditionError("shut down for sending (EPIPE)");
  }
  if (c.peer_shutdown & kShutdownRcv) {
    return absl::FailedPreconditionError("peer shut down receiving (EPIPE)");
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Engine::Send(ConnId id, SliceChain& data, absl::Time now,
                                    Actions& out) {
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  if (c.type != SocketType::kStream) {
    return absl::FailedPreconditionError("Send on SEQPACKET; use SendMessage");
  }
  if (absl::Status s = CheckWritable(c); !s.ok()) return s;
  size_t sent = 0;
  while (!data.empty()) {
    const uint32_t credit = c.credit.PeerCredit();
    if (credit == 0) break;
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(
        {data.size(), credit, config_.max_packet_payload}));
    // Leave no runt: a tail shorter than copy_below would be copied by the
    // receiver (rx_queue.h), so shift a little more into the last packet.
    const size_t rest = data.size() - n;
    if (rest > 0 && rest < config_.copy_below && n > 2 * config_.copy_below) {
      n -= config_.copy_below;
    }
    c.credit.OnSend(n);
    Emit(c, Op::kRw, 0, data.TakePrefix(n), out);
    sent += n;
  }
  if (!data.empty()) Block(c, 1, now, out);
  return sent;
}

absl::Status Engine::SendMessage(ConnId id, SliceChain message, bool end_of_record,
                                 absl::Time now, Actions& out) {
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  if (c.type != SocketType::kSeqpacket) {
    return absl::FailedPreconditionError("SendMessage on STREAM; use Send");
  }
  if (absl::Status s = CheckWritable(c); !s.ok()) return s;
  if (message.empty()) return absl::InvalidArgumentError("empty message");
  if (message.size() > c.credit.PeerWindow()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "message of ", message.size(), " bytes exceeds the peer window of ",
        c.credit.PeerWindow(), " (EMSGSIZE)"));
  }
  const uint32_t size = static_cast<uint32_t>(message.size());
  if (c.blocked) {
    c.blocked_want = size;
    UpdateBlocked(c, now, out);
  }
  if (size > c.credit.PeerCredit()) {
    Block(c, size, now, out);
    return absl::UnavailableError("credit-blocked: retry after kCreditRestored");
  }
  while (!message.empty()) {
    const uint32_t n = std::min<uint32_t>(static_cast<uint32_t>(message.size()),
                                          config_.max_packet_payload);
    SliceChain fragment = message.TakePrefix(n);
    const uint32_t flags =
        message.empty() ? (kSeqEom | (end_of_record ? kSeqEor : 0)) : 0;
    c.credit.OnSend(n);
    Emit(c, Op::kRw, flags, std::move(fragment), out);
  }
  return absl::OkStatus();
}

absl::StatusOr<SliceChain> Engine::Read(ConnId id, size_t max, Actions& out) {
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  if (c.type != SocketType::kStream) {
    return absl::FailedPreconditionError("Read on SEQPACKET; use ReadMessage");
  }
  SliceChain data = c.rx.Read(max);
  if (data.empty()) {
    if (c.state == ConnState::kClosed && !c.status.ok()) {
      return absl::UnavailableError(c.status.message());
    }
    return data;
  }
  c.credit.OnConsume(static_cast<uint32_t>(data.size()));
  MaybeAdvertiseCredit(c, out);
  MaybeFinishClose(c, absl::InfinitePast(), out);
  return data;
}

absl::StatusOr<std::optional<Message>> Engine::ReadMessage(ConnId id, Actions& out) {
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  if (c.type != SocketType::kSeqpacket) {
    return absl::FailedPreconditionError("ReadMessage on STREAM; use Read");
  }
  std::optional<Message> msg = c.rx.ReadMessage();
  if (!msg.has_value()) {
    if (c.state == ConnState::kClosed && !c.status.ok() && c.rx.empty()) {
      return absl::UnavailableError(c.status.message());
    }
    return msg;
  }
  c.credit.OnConsume(static_cast<uint32_t>(msg->data.size()));
  MaybeAdvertiseCredit(c, out);
  MaybeFinishClose(c, absl::InfinitePast(), out);
  return msg;
}

bool Engine::AtEof(ConnId id) const {
  const Connection* c = Find(id);
  if (c == nullptr) return true;
  const bool no_more = (c->peer_shutdown & kShutdownSend) || c->state == ConnState::kClosed;
  return no_more && c->rx.empty();
}

absl::Status Engine::Shutdown(ConnId id, uint32_t flags, absl::Time now, Actions& out) {
  if (flags == 0 || (flags & ~kShutdownBoth) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad shutdown flags ", flags));
  }
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  if (c.state != ConnState::kEstablished) {
    return absl::FailedPreconditionError("shutdown needs an established connection");
  }
  const uint32_t added = flags & ~c.local_shutdown;
  c.local_shutdown |= flags;
  if (added == 0) return absl::OkStatus();
  if (added & kShutdownSend) EndBlocked(c, now);
  Emit(c, Op::kShutdown, c.local_shutdown, {}, out);
  return absl::OkStatus();
}

void Engine::Close(ConnId id, absl::Time now, Actions& out) {
  Connection* c = Find(id);
  if (c == nullptr || !c->owned_by_app) return;
  c->owned_by_app = false;
  switch (c->state) {
    case ConnState::kClosed:
      Release(id);
      return;
    case ConnState::kConnecting:
      Emit(*c, Op::kRst, 0, {}, out);
      Release(id);
      return;
    case ConnState::kEstablished:
      break;
  }
  if (!c->rx.empty() || c->peer_shutdown == kShutdownBoth) {
    // Unread data is lost: tell the peer at once, as TCP does.
    Emit(*c, Op::kRst, 0, {}, out);
    Release(id);
    return;
  }
  EndBlocked(*c, now);
  c->lingering = true;
  if (c->local_shutdown != kShutdownBoth) {
    c->local_shutdown = kShutdownBoth;
    Emit(*c, Op::kShutdown, kShutdownBoth, {}, out);
  }
  SetDeadline(*c, now + config_.close_timeout);
}

absl::Status Engine::SetBufferSize(ConnId id, uint32_t buf_alloc, Actions& out) {
  if (buf_alloc == 0) return absl::InvalidArgumentError("buffer size must be > 0");
  absl::StatusOr<Connection*> found = FindOwned(id);
  if (!found.ok()) return found.status();
  Connection& c = **found;
  c.credit.SetBufAlloc(buf_alloc);
  MaybeAdvertiseCredit(c, out);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Transport inputs

void Engine::OnPacket(const Header& h, SliceChain payload, absl::Time now, Actions& out) {
  ++stats_.packets_in;
  HeaderCheck check =
      CheckHeader(h, AddressPolicy{config_.local_cid, config_.peer_cid,
                                   config_.max_packet_payload});
  if (check.verdict == HeaderVerdict::kAccept && payload.size() != h.len) {
    check = {h.op_code() == Op::kRst ? HeaderVerdict::kDrop : HeaderVerdict::kReset,
             absl::InvalidArgumentError(absl::StrCat(
                 "header len ", h.len, " but ", payload.size(), " payload bytes"))};
  }
  auto it = by_ports_.find(PortPair{h.dst_port, h.src_port});
  Connection* c = it == by_ports_.end() ? nullptr : Find(it->second);
  if (check.verdict == HeaderVerdict::kDrop) {
    ++stats_.dropped;
    return;
  }
  if (check.verdict == HeaderVerdict::kReset) {
    ++stats_.malformed;
    if (c != nullptr) {
      ProtocolError(*c, check.reason, now, out);
    } else {
      EmitRst(h, out);
    }
    return;
  }
  if (c == nullptr) {
    HandleNoConnection(h, now, out);
  } else if (h.type != static_cast<uint16_t>(c->type)) {
    ProtocolError(*c, absl::InvalidArgumentError("packet type differs from the socket's"),
                  now, out);
  } else if (c->lingering) {
    HandleLingering(*c, h, std::move(payload), now, out);
  } else if (c->state == ConnState::kConnecting) {
    HandleConnecting(*c, h, now, out);
  } else {
    HandleEstablished(*c, h, std::move(payload), now, out);
  }
}

void Engine::HandleNoConnection(const Header& h, absl::Time now, Actions& out) {
  switch (h.op_code()) {
    case Op::kRequest:
      HandleRequest(h, now, out);
      return;
    case Op::kRst:
      ++stats_.dropped;  // nothing to reset
      return;
    default:
      // A packet for a connection we do not have (Linux reset_no_sock).
      ++stats_.dropped;
      EmitRst(h, out);
      return;
  }
}

void Engine::HandleRequest(const Header& h, absl::Time now, Actions& out) {
  auto it = listeners_.find(h.dst_port);
  if (it == listeners_.end()) it = listeners_.find(kPortAny);
  if (it == listeners_.end() || h.type != static_cast<uint16_t>(it->second.type) ||
      it->second.pending.size() >= it->second.backlog ||
      conns_.size() >= config_.max_connections) {
    ++stats_.refused;
    EmitRst(h, out);
    return;
  }
  Connection& c = NewConnection(it->second.type, h.dst_port, h.src_port);
  if (absl::Status s = c.credit.OnPeerCredit(h.buf_alloc, h.fwd_cnt); !s.ok()) {
    ++stats_.protocol_errors;
    Release(c.id);
    EmitRst(h, out);
    return;
  }
  c.accept_port = it->first;
  by_ports_[{c.local_port, c.peer_port}] = c.id;
  it->second.pending.push_back(c.id);
  if (it->second.defer_response) {
    c.awaiting_response = true;  // stays CONNECTING until Respond()
    SetDeadline(c, now + config_.connect_timeout);
  } else {
    c.state = ConnState::kEstablished;
    Emit(c, Op::kResponse, 0, {}, out);
  }
  EmitEvent(out, EventType::kIncoming, ConnId{}, absl::OkStatus(), h.dst_port);
}

void Engine::HandleConnecting(Connection& c, const Header& h, absl::Time now,
                              Actions& out) {
  if (c.awaiting_response) {
    // The peer waits for our answer: it may only give up.
    if (h.op_code() == Op::kRst) {
      Terminate(c, EventType::kReset,
                absl::UnavailableError("peer withdrew its connection request (RST)"), now,
                out);
    } else {
      ProtocolError(c, absl::InvalidArgumentError(absl::StrCat(
                           OpName(h.op), " before our OP_RESPONSE")),
                    now, out);
    }
    return;
  }
  switch (h.op_code()) {
    case Op::kResponse:
      if (absl::Status s = c.credit.OnPeerCredit(h.buf_alloc, h.fwd_cnt); !s.ok()) {
        ProtocolError(c, std::move(s), now, out);
        return;
      }
      c.state = ConnState::kEstablished;
      SetDeadline(c, absl::InfiniteFuture());
      EmitEvent(out, EventType::kConnected, c.id);
      return;
    case Op::kRst:
      Terminate(c, EventType::kRefused,
                absl::UnavailableError(absl::StrCat("connection to port ", c.peer_port,
                                                    " refused (RST)")),
                now, out);
      return;
    default:
      ProtocolError(c, absl::InvalidArgumentError(absl::StrCat(
                           OpName(h.op), " while connecting")),
                    now, out);
      return;
  }
}

void Engine::HandleEstablished(Connection& c, const Header& h, SliceChain&& payload,
                               absl::Time now, Actions& out) {
  // The handlers below may end the connection, and one nobody owns (still in
  // an accept queue) is freed at once: after them, only |id| is safe to use.
  const ConnId id = c.id;
  if (h.op_code() == Op::kRst) {
    const bool orderly =
        c.peer_shutdown == kShutdownBoth || c.local_shutdown == kShutdownBoth;
    Terminate(c, orderly ? EventType::kClosed : EventType::kReset,
              orderly ? absl::OkStatus()
                      : absl::UnavailableError("connection reset by peer (RST)"),
              now, out);
    return;
  }
  if (absl::Status s = c.credit.OnPeerCredit(h.buf_alloc, h.fwd_cnt); !s.ok()) {
    ProtocolError(c, std::move(s), now, out);
    return;
  }
  switch (h.op_code()) {
    case Op::kRw:
      HandleData(c, h, std::move(payload), now, out);
      break;
    case Op::kCreditUpdate:
      break;
    case Op::kCreditRequest:
      c.credit.OnCreditRequest();
      Emit(c, Op::kCreditUpdate, 0, {}, out);
      break;
    case Op::kShutdown:
      HandlePeerShutdown(c, h, now, out);
      break;
    default:
      ProtocolError(c, absl::InvalidArgumentError(absl::StrCat(
                           OpName(h.op), " on an established connection")),
                    now, out);
      return;
  }
  Connection* still = Find(id);
  if (still != nullptr && still->state == ConnState::kEstablished) {
    UpdateBlocked(*still, now, out);
  }
}

void Engine::HandleData(Connection& c, const Header& h, SliceChain&& payload,
                        absl::Time now, Actions& out) {
  if (c.peer_shutdown & kShutdownSend) {
    ProtocolError(c, absl::InvalidArgumentError("data after SHUTDOWN(SEND)"), now, out);
    return;
  }
  const bool seqpacket = c.type == SocketType::kSeqpacket;
  const bool eom = seqpacket && (h.flags & kSeqEom);
  if (h.len == 0 && !eom) return;
  if (absl::Status s = c.credit.OnReceive(h.len); !s.ok()) {
    ProtocolError(c, std::move(s), now, out);
    return;
  }
  if (c.local_shutdown & kShutdownRcv) {
    // We said we would not receive: discard, but keep the credit flowing.
    c.credit.OnConsume(h.len);
    return;
  }
  const uint64_t copied_before = c.rx.copied_bytes();
  const size_t messages_before = c.rx.complete_messages();
  c.rx.Push(std::move(payload), eom, seqpacket && (h.flags & kSeqEor));
  stats_.copied_bytes += c.rx.copied_bytes() - copied_before;
  const bool readable = seqpacket ? c.rx.complete_messages() > messages_before : h.len > 0;
  if (readable && !c.accept_port.has_value()) EmitEvent(out, EventType::kReadable, c.id);
}

void Engine::HandlePeerShutdown(Connection& c, const Header& h, absl::Time now,
                                Actions& out) {
  const uint32_t added = h.flags & kShutdownBoth & ~c.peer_shutdown;
  c.peer_shutdown |= added;
  if (added != 0 && !c.accept_port.has_value()) {
    EmitEvent(out, EventType::kPeerShutdown, c.id, absl::OkStatus(), 0, c.peer_shutdown);
    if (added & kShutdownSend) EmitEvent(out, EventType::kReadable, c.id);
  }
  if (added & kShutdownRcv) EndBlocked(c, now);
  MaybeFinishClose(c, now, out);
}

void Engine::HandleLingering(Connection& c, const Header& h, SliceChain&& payload,
                             absl::Time now, Actions& out) {
  (void)payload;  // we shut down receiving: data is dropped
  (void)now;
  switch (h.op_code()) {
    case Op::kRst:
      Release(c.id);
      return;
    case Op::kShutdown:
      c.peer_shutdown |= h.flags & kShutdownBoth;
      if (c.peer_shutdown == kShutdownBoth) {
        Emit(c, Op::kRst, 0, {}, out);
        Release(c.id);
      }
      return;
    default:
      return;
  }
}

void Engine::OnTimer(absl::Time now, Actions& out) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const ConnId id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    Connection* c = Find(id);
    if (c == nullptr) continue;
    c->deadline = absl::InfiniteFuture();
    if (c->lingering) {
      // The peer never finished the close handshake.
      Emit(*c, Op::kRst, 0, {}, out);
      Release(id);
    } else if (c->state == ConnState::kConnecting) {
      Emit(*c, Op::kRst, 0, {}, out);
      Terminate(*c, EventType::kReset,
                absl::DeadlineExceededError(
                    c->awaiting_response
                        ? absl::StrCat("request to port ", c->local_port, " not answered")
                        : absl::StrCat("connect to port ", c->peer_port, " timed out")),
                now, out);
    }
  }
}

std::optional<absl::Time> Engine::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

void Engine::ResetAll(const absl::Status& reason, Actions& out) {
  std::vector<ConnId> ids;
  ids.reserve(conns_.size());
  for (const auto& entry : conns_) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end());  // deterministic event order
  for (ConnId id : ids) {
    Connection* c = Find(id);
    if (c->lingering || c->accept_port.has_value()) {
      Release(id);
    } else if (c->state != ConnState::kClosed) {
      Terminate(*c, EventType::kReset, reason, absl::InfinitePast(), out);
    }
  }
}

// ---------------------------------------------------------------------------
// Connection lifecycle

Engine::Connection& Engine::NewConnection(SocketType type, uint32_t local_port,
                                          uint32_t peer_port) {
  const ConnId id{next_id_++};
  auto conn = std::make_unique<Connection>(id, type, local_port, peer_port, config_);
  Connection& ref = *conn;
  conns_.emplace(id, std::move(conn));
  stats_.connections = conns_.size();
  return ref;
}

// Ends |c|. A connection the application does not hold (waiting in an accept
// queue, or lingering after Close) is freed here: callers must not touch |c|
// afterwards.
void Engine::Terminate(Connection& c, EventType event, absl::Status status,
                       absl::Time now, Actions& out) {
  VRPC_DCHECK(c.state != ConnState::kClosed);
  EndBlocked(c, now);
  c.state = ConnState::kClosed;
  c.status = std::move(status);
  SetDeadline(c, absl::InfiniteFuture());
  by_ports_.erase(PortPair{c.local_port, c.peer_port});
  auto bound = bound_ports_.find(c.local_port);
  if (bound != bound_ports_.end() && bound->second == c.id) bound_ports_.erase(bound);
  if (c.accept_port.has_value() || c.lingering) {
    Release(c.id);  // nobody to tell
    return;
  }
  EmitEvent(out, event, c.id, c.status);
}

void Engine::ProtocolError(Connection& c, absl::Status why, absl::Time now, Actions& out) {
  ++stats_.protocol_errors;
  VRPC_LOG(DEBUG) << "vsock " << c.local_port << "<->" << c.peer_port
                  << " reset: " << why;
  Emit(c, Op::kRst, 0, {}, out);
  Terminate(c, EventType::kReset, std::move(why), now, out);
}

void Engine::MaybeFinishClose(Connection& c, absl::Time now, Actions& out) {
  // Linux: once the peer has shut down both ways and we hold no unread data,
  // the receiver answers with RST and the connection is done.
  if (c.state != ConnState::kEstablished || c.peer_shutdown != kShutdownBoth ||
      !c.rx.empty()) {
    return;
  }
  Emit(c, Op::kRst, 0, {}, out);
  Terminate(c, EventType::kClosed, absl::OkStatus(), now, out);
}

void Engine::Release(ConnId id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Connection& c = *it->second;
  if (c.deadline != absl::InfiniteFuture()) deadlines_.erase({c.deadline, id});
  auto port = by_ports_.find(PortPair{c.local_port, c.peer_port});
  if (port != by_ports_.end() && port->second == id) by_ports_.erase(port);
  auto bound = bound_ports_.find(c.local_port);
  if (bound != bound_ports_.end() && bound->second == id) bound_ports_.erase(bound);
  if (c.accept_port.has_value()) {
    auto listener = listeners_.find(*c.accept_port);
    if (listener != listeners_.end()) {
      auto& pending = listener->second.pending;
      pending.erase(std::remove(pending.begin(), pending.end(), id), pending.end());
    }
  }
  if (found_ == it->second.get()) found_ = nullptr;
  conns_.erase(it);
  stats_.connections = conns_.size();
}

void Engine::SetDeadline(Connection& c, absl::Time deadline) {
  if (c.deadline != absl::InfiniteFuture()) deadlines_.erase({c.deadline, c.id});
  c.deadline = deadline;
  if (deadline != absl::InfiniteFuture()) deadlines_.insert({deadline, c.id});
}

void Engine::Block(Connection& c, uint32_t want, absl::Time now, Actions& out) {
  c.blocked_want = want;
  if (c.blocked) return;
  c.blocked = true;
  c.blocked_since = now;
  EmitEvent(out, EventType::kCreditBlocked, c.id);
  Emit(c, Op::kCreditRequest, 0, {}, out);
}

void Engine::UpdateBlocked(Connection& c, absl::Time now, Actions& out) {
  if (!c.blocked || c.credit.PeerCredit() < c.blocked_want) return;
  EndBlocked(c, now);
  EmitEvent(out, EventType::kCreditRestored, c.id);
}

void Engine::EndBlocked(Connection& c, absl::Time now) {
  if (!c.blocked) return;
  c.blocked = false;
  if (now > c.blocked_since) c.blocked_total += now - c.blocked_since;
}

void Engine::MaybeAdvertiseCredit(Connection& c, Actions& out) {
  if (c.state != ConnState::kEstablished || (c.peer_shutdown & kShutdownSend)) return;
  if (c.credit.ShouldAdvertise(config_.credit_update_threshold,
                               config_.credit_update_on_drain)) {
    Emit(c, Op::kCreditUpdate, 0, {}, out);
  }
}

// ---------------------------------------------------------------------------
// Output

void Engine::Emit(Connection& c, Op op, uint32_t flags, SliceChain&& payload,
                  Actions& out) {
  Packet& p = out.packets.emplace_back();  // built in place: no Packet move
  p.header.src_cid = config_.local_cid;
  p.header.dst_cid = config_.peer_cid;
  p.header.src_port = c.local_port;
  p.header.dst_port = c.peer_port;
  p.header.len = static_cast<uint32_t>(payload.size());
  p.header.type = static_cast<uint16_t>(c.type);
  p.header.op = static_cast<uint16_t>(op);
  p.header.flags = flags;
  p.header.buf_alloc = c.credit.buf_alloc();
  p.header.fwd_cnt = c.credit.fwd_cnt();
  p.payload = std::move(payload);
  c.credit.MarkAdvertised();
  ++stats_.packets_out;
  if (op == Op::kRst) ++stats_.rst_sent;
}

void Engine::EmitRst(const Header& in_reply_to, Actions& out) {
  Packet p;
  p.header.src_cid = config_.local_cid;
  p.header.dst_cid = config_.peer_cid;
  p.header.src_port = in_reply_to.dst_port;
  p.header.dst_port = in_reply_to.src_port;
  p.header.type = in_reply_to.type;
  p.header.op = static_cast<uint16_t>(Op::kRst);
  ++stats_.packets_out;
  ++stats_.rst_sent;
  out.packets.push_back(std::move(p));
}

void Engine::EmitEvent(Actions& out, EventType type, ConnId conn, absl::Status status,
                       uint32_t port, uint32_t flags) {
  out.events.push_back(Event{type, conn, port, flags, std::move(status)});
}

// ---------------------------------------------------------------------------
// Lookup

Engine::Connection* Engine::Find(ConnId id) {
  return const_cast<Connection*>(static_cast<const Engine*>(this)->Find(id));
}

const Engine::Connection* Engine::Find(ConnId id) const {
  if (found_ != nullptr && found_id_ == id) return found_;
  auto it = conns_.find(id);
  if (it == conns_.end()) return nullptr;
  found_id_ = id;
  found_ = it->second.get();
  return found_;
}

absl::StatusOr<Engine::Connection*> Engine::FindOwned(ConnId id) {
  Connection* c = Find(id);
  if (c == nullptr || !c->owned_by_app) {
    return absl::NotFoundError(absl::StrCat("no connection ", id.value));
  }
  return c;
}

bool Engine::LocalPortInUse(uint32_t port) const {
  return bound_ports_.contains(port) || listeners_.contains(port);
}

absl::StatusOr<uint32_t> Engine::PickEphemeralPort() {
  const uint64_t range =
      uint64_t{config_.ephemeral_port_last} - config_.ephemeral_port_first + 1;
  // At most this many ports are taken, so one more try must find a free one.
  const uint64_t tries = std::min<uint64_t>(range, bound_ports_.size() + listeners_.size() + 1);
  for (uint64_t i = 0; i < tries; ++i) {
    const uint32_t port =
        config_.ephemeral_port_first + static_cast<uint32_t>(port_cursor_ % range);
    port_cursor_ = static_cast<uint32_t>((port_cursor_ + 1) % range);
    if (!LocalPortInUse(port)) return port;
  }
  return absl::ResourceExhaustedError("no free ephemeral port");
}

absl::StatusOr<ConnInfo> Engine::GetInfo(ConnId id, absl::Time now) const {
  const Connection* c = Find(id);
  if (c == nullptr || !c->owned_by_app) {
    return absl::NotFoundError(absl::StrCat("no connection ", id.value));
  }
  ConnInfo info;
  info.state = c->state;
  info.type = c->type;
  info.local_port = c->local_port;
  info.peer_port = c->peer_port;
  info.local_shutdown = c->local_shutdown;
  info.peer_shutdown = c->peer_shutdown;
  info.credit_blocked = c->blocked;
  info.time_blocked = c->blocked_total;
  if (c->blocked && now > c->blocked_since) info.time_blocked += now - c->blocked_since;
  info.status = c->status;
  info.credit = c->credit.Snapshot();
  info.rx_copied_bytes = c->rx.copied_bytes();
  return info;
}

}  // namespace vsock
}  // namespace vrpc
