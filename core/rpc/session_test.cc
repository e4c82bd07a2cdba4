// Two Sessions back to back: the RPC framing rules without I/O.
#include "core/rpc/session.h"

#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace rpc {
namespace {

using ::testing::HasSubstr;
using Type = SessionEventType;

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() { Build(SessionOptions(), SessionOptions()); }

  void Build(const SessionOptions& client, const SessionOptions& server) {
    c_out_.Clear();
    s_out_.Clear();
    client_ = std::make_unique<Session>(Session::Role::kClient, client, c_out_);
    server_ = std::make_unique<Session>(Session::Role::kServer, server, s_out_);
    Pump();
    c_events_.clear();
    s_events_.clear();
  }

  // Moves bytes both ways until quiet; collects events.
  void Pump() {
    for (int i = 0; i < 100; ++i) {
      Collect();
      if (c_out_.bytes.empty() && s_out_.bytes.empty()) return;
      SliceChain to_server = std::move(c_out_.bytes);
      c_out_.bytes.Clear();
      SliceChain to_client = std::move(s_out_.bytes);
      s_out_.bytes.Clear();
      if (!to_server.empty()) server_status_ = server_->OnBytes(std::move(to_server), s_out_);
      if (!to_client.empty()) client_status_ = client_->OnBytes(std::move(to_client), c_out_);
    }
    FAIL() << "never quiet";
  }
  void Collect() {
    for (SessionEvent& e : c_out_.events) c_events_.push_back(std::move(e));
    c_out_.events.clear();
    for (SessionEvent& e : s_out_.events) s_events_.push_back(std::move(e));
    s_out_.events.clear();
  }
  static const SessionEvent* Last(const std::vector<SessionEvent>& events, Type type) {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->type == type) return &*it;
    }
    return nullptr;
  }

  uint32_t Start(const std::string& method = "/test.Svc/Call") {
    RequestHeaders h;
    h.method = method;
    absl::StatusOr<uint32_t> id = client_->StartCall(h, c_out_);
    EXPECT_THAT(id, IsOk());
    Pump();
    return id.ok() ? *id : 0;
  }

  SessionOutput c_out_, s_out_;
  std::unique_ptr<Session> client_, server_;
  std::vector<SessionEvent> c_events_, s_events_;
  absl::Status client_status_, server_status_;
};

TEST_F(SessionTest, UnaryCallEndToEnd) {
  RequestHeaders h;
  h.method = "/test.Svc/Unary";
  h.timeout = absl::Seconds(2);
  h.metadata = {{"who", "client"}};
  VRPC_ASSERT_OK_AND_ASSIGN(uint32_t id, client_->StartCall(h, c_out_));
  EXPECT_EQ(id, 1u);
  VRPC_ASSERT_OK(client_->SendMessage(id, SliceChain(Slice::Copy("ping")), c_out_));
  VRPC_ASSERT_OK(client_->HalfClose(id, c_out_));
  Pump();
  ASSERT_EQ(s_events_.size(), 3u);
  EXPECT_EQ(s_events_[0].type, Type::kCallStarted);
  EXPECT_EQ(s_events_[0].headers.method, "/test.Svc/Unary");
  EXPECT_EQ(s_events_[0].headers.timeout, absl::Seconds(2));
  EXPECT_EQ(s_events_[0].headers.metadata, h.metadata);
  EXPECT_EQ(s_events_[1].type, Type::kMessage);
  EXPECT_EQ(s_events_[1].message.ToString(), "ping");
  EXPECT_EQ(s_events_[2].type, Type::kHalfClosed);

  VRPC_ASSERT_OK(server_->SendInitialMetadata(id, {{"who", "server"}}, s_out_));
  VRPC_ASSERT_OK(server_->SendMessage(id, SliceChain(Slice::Copy("pong")), s_out_));
  VRPC_ASSERT_OK(server_->Finish(id, CallStatus{absl::StatusCode::kOk, "", {{"t", "1"}}}, s_out_));
  Pump();
  ASSERT_EQ(c_events_.size(), 3u);
  EXPECT_EQ(c_events_[0].type, Type::kInitialMetadata);
  EXPECT_EQ(c_events_[0].metadata[0].second, "server");
  EXPECT_EQ(c_events_[1].message.ToString(), "pong");
  EXPECT_EQ(c_events_[2].type, Type::kFinished);
  EXPECT_EQ(c_events_[2].status.code, absl::StatusCode::kOk);
  EXPECT_EQ(c_events_[2].status.metadata[0].first, "t");
  EXPECT_EQ(client_->open_streams(), 0u);
  EXPECT_EQ(server_->open_streams(), 0u);
}

TEST_F(SessionTest, PeerSettingsAreKnownOnceTheirFrameArrives) {
  SessionOutput c_out, s_out;
  SessionOptions server_options;
  server_options.local.max_concurrent_streams = 2;
  Session client(Session::Role::kClient, SessionOptions(), c_out);
  Session server(Session::Role::kServer, server_options, s_out);
  EXPECT_FALSE(client.peer_settings_received());
  EXPECT_EQ(client.peer_settings().max_concurrent_streams, Settings().max_concurrent_streams);
  VRPC_ASSERT_OK(client.OnBytes(std::move(s_out.bytes), c_out));
  EXPECT_TRUE(client.peer_settings_received());
  EXPECT_EQ(client.peer_settings().max_concurrent_streams, 2u);
}

TEST_F(SessionTest, StreamIdsAreOddAndIncrease) {
  EXPECT_EQ(Start(), 1u);
  EXPECT_EQ(Start(), 3u);
  EXPECT_EQ(Start(), 5u);
  EXPECT_EQ(server_->open_streams(), 3u);
}

TEST_F(SessionTest, CancelFromEitherSide) {
  const uint32_t a = Start();
  const uint32_t b = Start();
  client_->Cancel(a, CallStatus{absl::StatusCode::kDeadlineExceeded, "deadline", {}}, c_out_);
  Pump();
  const SessionEvent* e = Last(s_events_, Type::kCancelled);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stream, a);
  EXPECT_EQ(e->status.code, absl::StatusCode::kDeadlineExceeded);
  server_->Cancel(b, CallStatus{absl::StatusCode::kCancelled, "handler gave up", {}}, s_out_);
  Pump();
  e = Last(c_events_, Type::kFinished);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stream, b);
  EXPECT_EQ(e->status.code, absl::StatusCode::kCancelled);
  EXPECT_EQ(client_->open_streams(), 0u);
  EXPECT_EQ(server_->open_streams(), 0u);
}

TEST_F(SessionTest, OversizedMessageFailsOnlyThatCall) {
  SessionOptions small;
  small.local.max_message_size = 1024;
  Build(SessionOptions(), small);
  // The sender knows the limit from SETTINGS and refuses locally.
  const uint32_t a = Start();
  EXPECT_THAT(client_->SendMessage(a, SliceChain(Slice::Copy(std::string(1025, 'x'))), c_out_),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // A peer that ignores SETTINGS: the server rejects from the header.
  Build(SessionOptions(), small);
  const uint32_t b = Start();
  const uint32_t c = Start();
  VRPC_ASSERT_OK(client_->SendMessage(b, SliceChain(Slice::Copy(std::string(1024, 'x'))), c_out_));
  Pump();
  EXPECT_EQ(Last(s_events_, Type::kMessage)->message.size(), 1024u);
  // Forge an oversized MESSAGE on stream c.
  FrameHeader h;
  h.length = 5000;
  h.type = static_cast<uint8_t>(FrameType::kMessage);
  h.stream_id = c;
  uint8_t raw[kFrameHeaderSize];
  EncodeFrameHeader(h, raw);
  SliceChain forged(Slice::Copy(absl::MakeConstSpan(raw)));
  forged.Append(Slice::Copy(std::string(5000, 'y')));
  VRPC_ASSERT_OK(server_->OnBytes(std::move(forged), s_out_));
  Pump();
  const SessionEvent* cancelled = Last(s_events_, Type::kCancelled);
  ASSERT_NE(cancelled, nullptr);
  EXPECT_EQ(cancelled->stream, c);
  EXPECT_EQ(cancelled->status.code, absl::StatusCode::kResourceExhausted);
  const SessionEvent* finished = Last(c_events_, Type::kFinished);
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->stream, c);
  EXPECT_EQ(finished->status.code, absl::StatusCode::kResourceExhausted);
  // Stream b and the connection are fine.
  VRPC_ASSERT_OK(client_->SendMessage(b, SliceChain(Slice::Copy("still here")), c_out_));
  Pump();
  EXPECT_EQ(Last(s_events_, Type::kMessage)->message.ToString(), "still here");
  EXPECT_THAT(server_status_, IsOk());
  EXPECT_EQ(server_->stats().oversized_messages, 1u);
}

TEST_F(SessionTest, PerStreamWindowBlocksOneStreamOnly) {
  SessionOptions server;
  server.local.initial_window = 4096;
  Build(SessionOptions(), server);
  const uint32_t slow = Start();
  const uint32_t fast = Start();
  const std::string chunk(3000, 'c');
  VRPC_ASSERT_OK(client_->SendMessage(slow, SliceChain(Slice::Copy(chunk)), c_out_));
  VRPC_ASSERT_OK(client_->SendMessage(slow, SliceChain(Slice::Copy(chunk)), c_out_));  // goes negative
  EXPECT_FALSE(client_->CanSend(slow));
  EXPECT_THAT(client_->SendMessage(slow, SliceChain(Slice::Copy(chunk)), c_out_),
              StatusIs(absl::StatusCode::kUnavailable));
  // The other stream is unaffected.
  VRPC_ASSERT_OK(client_->SendMessage(fast, SliceChain(Slice::Copy(chunk)), c_out_));
  Pump();
  // The server application consumes the slow stream: a WINDOW_UPDATE reopens it.
  server_->ConsumeMessage(slow, 6000, s_out_);
  Pump();
  const SessionEvent* w = Last(c_events_, Type::kWritable);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->stream, slow);
  EXPECT_TRUE(client_->CanSend(slow));
}

TEST_F(SessionTest, BackloggedOutputHoldsMessagesButNotControlFrames) {
  SessionOptions server;
  server.local.initial_window = 4096;
  Build(SessionOptions(), server);
  const uint32_t open = Start();
  const uint32_t shut = Start();
  const std::string chunk(5000, 'c');
  VRPC_ASSERT_OK(client_->SendMessage(shut, SliceChain(Slice::Copy(chunk)), c_out_));
  Pump();
  ASSERT_FALSE(client_->CanSend(shut));  // window spent
  client_->WantSend(shut);

  client_->SetOutputBacklogged(true, c_out_);
  EXPECT_TRUE(client_->output_backlogged());
  EXPECT_FALSE(client_->CanSend(open));
  client_->WantSend(open);
  // Control frames still go: a third call starts and half-closes.
  const uint32_t third = Start();
  VRPC_EXPECT_OK(client_->HalfClose(third, c_out_));
  Pump();
  EXPECT_NE(Last(s_events_, Type::kHalfClosed), nullptr);
  // The window of |shut| reopens while backlogged: no kWritable yet.
  server_->ConsumeMessage(shut, 5000, s_out_);
  Pump();
  EXPECT_EQ(Last(c_events_, Type::kWritable), nullptr);
  EXPECT_FALSE(client_->CanSend(shut));

  // Drained: both waiting streams hear kWritable, once each.
  client_->SetOutputBacklogged(false, c_out_);
  Collect();
  std::vector<uint32_t> writable;
  for (const SessionEvent& e : c_events_) {
    if (e.type == Type::kWritable) writable.push_back(e.stream);
  }
  EXPECT_THAT(writable, ::testing::UnorderedElementsAre(open, shut));
  EXPECT_TRUE(client_->CanSend(open));
  EXPECT_TRUE(client_->CanSend(shut));
  client_->SetOutputBacklogged(false, c_out_);  // no change: no events
  EXPECT_TRUE(c_out_.events.empty());
}

TEST_F(SessionTest, SendingBeyondTheWindowIsAConnectionError) {
  SessionOptions server;
  server.local.initial_window = 1000;
  Build(SessionOptions(), server);
  const uint32_t id = Start();
  auto frame = [&](size_t n) {
    FrameHeader h;
    h.length = static_cast<uint32_t>(n);
    h.type = static_cast<uint8_t>(FrameType::kMessage);
    h.stream_id = id;
    uint8_t raw[kFrameHeaderSize];
    EncodeFrameHeader(h, raw);
    SliceChain f(Slice::Copy(absl::MakeConstSpan(raw)));
    f.Append(Slice::Copy(std::string(n, 'z')));
    return f;
  };
  VRPC_ASSERT_OK(server_->OnBytes(frame(1500), s_out_));  // window 1000 -> -500: allowed once
  EXPECT_THAT(server_->OnBytes(frame(10), s_out_), StatusIs(absl::StatusCode::kResourceExhausted));
  Collect();
  const SessionEvent* e = Last(s_events_, Type::kCancelled);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->status.code, absl::StatusCode::kUnavailable);
  // The client hears GOAWAY and its call ends UNAVAILABLE.
  Pump();
  EXPECT_NE(Last(c_events_, Type::kGoAway), nullptr);
}

TEST_F(SessionTest, ConcurrencyLimitRefusesExtraCalls) {
  SessionOptions server;
  server.local.max_concurrent_streams = 2;
  Build(SessionOptions(), server);
  Start();
  Start();
  // The client knows the limit from SETTINGS.
  RequestHeaders h;
  h.method = "/a/b";
  EXPECT_THAT(client_->StartCall(h, c_out_), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(SessionTest, PingIsAnswered) {
  client_->Ping(0x1122334455667788ull, c_out_);
  Pump();
  const SessionEvent* e = Last(c_events_, Type::kPingAck);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->ping, 0x1122334455667788ull);
}

TEST_F(SessionTest, GoAwayLetsRunningCallsFinishAndRefusesNewOnes) {
  const uint32_t running = Start();
  server_->SendGoAway(absl::StatusCode::kUnavailable, "draining", s_out_);
  Pump();
  EXPECT_TRUE(client_->goaway_received());
  EXPECT_TRUE(client_->IsOpen(running));
  RequestHeaders h;
  h.method = "/a/b";
  EXPECT_THAT(client_->StartCall(h, c_out_), StatusIs(absl::StatusCode::kUnavailable));
  VRPC_ASSERT_OK(server_->Finish(running, CallStatus{}, s_out_));
  Pump();
  EXPECT_EQ(Last(c_events_, Type::kFinished)->status.code, absl::StatusCode::kOk);
}

TEST_F(SessionTest, GarbageIsAConnectionErrorThatEndsEveryCall) {
  const uint32_t a = Start();
  EXPECT_FALSE(server_->OnBytes(SliceChain(Slice::Copy(std::string(12, '\xff'))), s_out_).ok());
  Collect();
  const SessionEvent* e = Last(s_events_, Type::kCancelled);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stream, a);
  EXPECT_FALSE(server_->error().ok());
  // Nothing more is accepted.
  EXPECT_FALSE(server_->OnBytes(SliceChain(Slice::Copy("x")), s_out_).ok());
}

TEST_F(SessionTest, StreamIdsMustIncrease) {
  Start();
  Start();
  // A HEADERS reusing stream 1.
  RequestHeaders h;
  h.method = "/a/b";
  SliceChain payload = EncodeRequestHeaders(h);
  FrameHeader fh;
  fh.length = static_cast<uint32_t>(payload.size());
  fh.type = static_cast<uint8_t>(FrameType::kHeaders);
  fh.stream_id = 1;
  uint8_t raw[kFrameHeaderSize];
  EncodeFrameHeader(fh, raw);
  SliceChain f(Slice::Copy(absl::MakeConstSpan(raw)));
  f.Append(std::move(payload));
  EXPECT_THAT(server_->OnBytes(std::move(f), s_out_), StatusIs(absl::StatusCode::kInvalidArgument,
                                                               HasSubstr("stream 1")));
}

}  // namespace
}  // namespace rpc
}  // namespace vrpc
