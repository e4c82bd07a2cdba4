// File: examples/echo/client_modes.cc
#include "examples/echo/client_modes.h"

#include <future>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/rpc/context.h"
#include "core/rpc/reactors.h"
#include "examples/echo/echo_service.h"
#include "proto/echo/echo.pb.h"

namespace vrpc {
namespace echo_example {
namespace {

using echo::Echo;
using echo::EchoReply;
using echo::EchoRequest;

// ---------------------------------------------------------------------------
// Blocking

rpc::ClientContext* Context(std::unique_ptr<rpc::ClientContext>& holder, const Run& run) {
  holder = std::make_unique<rpc::ClientContext>();
  holder->set_timeout(run.timeout);
  return holder.get();
}

void BlockingUnary(Echo::Stub& stub, const Run& run, Result& r) {
  EchoRequest req;
  EchoReply reply;
  for (uint64_t i = 0; i < run.count; ++i) {
    req.set_payload(Pattern(run.size, i));
    std::unique_ptr<rpc::ClientContext> ctx;
    const absl::Time start = absl::Now();
    absl::Status s = stub.Unary(Context(ctx, run), req, &reply);
    r.latencies.push_back(absl::Now() - start);
    if (!s.ok()) {
      r.Fail(absl::StrCat("call ", i, ": ", s.ToString()));
    } else if (reply.payload() != req.payload()) {
      r.Fail(absl::StrCat("call ", i, ": the reply's payload differs"));
    } else {
      ++r.messages;
    }
  }
}

void BlockingServerStream(Echo::Stub& stub, const Run& run, Result& r) {
  EchoRequest req;
  req.set_payload(Pattern(run.size, 7));
  req.set_count(static_cast<uint32_t>(run.count));
  std::unique_ptr<rpc::ClientContext> ctx;
  auto reader = stub.ServerStream(Context(ctx, run), req);
  EchoReply reply;
  absl::Time last = absl::Now();
  while (reader->Read(&reply)) {
    const absl::Time now = absl::Now();
    r.latencies.push_back(now - last);  // gap between replies
    last = now;
    if (reply.sequence() != r.messages || reply.payload() != req.payload()) {
      r.Fail(absl::StrCat("reply ", r.messages, " is wrong (sequence ", reply.sequence(), ")"));
    }
    ++r.messages;
  }
  absl::Status s = reader->Finish();
  if (!s.ok()) r.Fail(s.ToString());
  if (r.messages != run.count) {
    r.Fail(absl::StrCat("got ", r.messages, " replies, wanted ", run.count));
  }
}

void BlockingClientStream(Echo::Stub& stub, const Run& run, Result& r) {
  if (run.count * run.size > kMaxAccumulated) {
    r.Fail(absl::StrCat("client-stream: count x size must stay within ", kMaxAccumulated,
                        " bytes (the server answers with their concatenation)"));
    return;
  }
  std::unique_ptr<rpc::ClientContext> ctx;
  EchoReply reply;
  auto writer = stub.ClientStream(Context(ctx, run), &reply);
  EchoRequest req;
  std::string expected;
  const absl::Time start = absl::Now();
  for (uint64_t i = 0; i < run.count; ++i) {
    req.set_payload(Pattern(run.size, i));
    expected += req.payload();
    if (!writer->Write(req)) break;
  }
  writer->WritesDone();
  absl::Status s = writer->Finish();
  r.latencies.push_back(absl::Now() - start);
  if (!s.ok()) {
    r.Fail(s.ToString());
  } else if (reply.sequence() != run.count || reply.payload() != expected) {
    r.Fail(absl::StrCat("the reply counts ", reply.sequence(), " messages of ", run.count,
                        reply.payload() == expected ? "" : "; its payload differs"));
  } else {
    r.messages = run.count;
  }
}

void BlockingBidi(Echo::Stub& stub, const Run& run, Result& r) {
  std::unique_ptr<rpc::ClientContext> ctx;
  auto stream = stub.Bidi(Context(ctx, run));
  EchoRequest req;
  EchoReply reply;
  for (uint64_t i = 0; i < run.count; ++i) {
    req.set_payload(Pattern(run.size, i));
    const absl::Time start = absl::Now();
    if (!stream->Write(req) || !stream->Read(&reply)) {
      r.Fail(absl::StrCat("the stream ended at message ", i));
      break;
    }
    r.latencies.push_back(absl::Now() - start);
    if (reply.sequence() != i || reply.payload() != req.payload()) {
      r.Fail(absl::StrCat("reply ", i, " is wrong"));
    } else {
      ++r.messages;
    }
  }
  stream->WritesDone();
  absl::Status s = stream->Finish();
  if (!s.ok()) r.Fail(s.ToString());
}

// ---------------------------------------------------------------------------
// Callback: each object lives on the caller's stack until |done| is set,
// which is the last thing its callbacks do.

// Unary: each AsyncUnary starts (on a later loop turn) when the previous
// one completed.
class UnaryChain {
 public:
  UnaryChain(Echo::Stub& stub, io::Reactor& loop, const Run& run, Result& r)
      : stub_(stub), loop_(loop), run_(run), r_(r) {}
  void Next() {
    if (i_ == run_.count) return done_.set_value();
    request_.set_payload(Pattern(run_.size, i_));
    context_ = std::make_unique<rpc::ClientContext>();
    context_->set_timeout(run_.timeout);
    start_ = absl::Now();
    stub_.AsyncUnary(context_.get(), request_, &reply_, [this](absl::Status s) { Completed(s); });
  }
  std::promise<void> done_;

 private:
  void Completed(const absl::Status& s) {
    r_.latencies.push_back(absl::Now() - start_);
    if (!s.ok()) {
      r_.Fail(absl::StrCat("call ", i_, ": ", s.ToString()));
    } else if (reply_.payload() != request_.payload()) {
      r_.Fail(absl::StrCat("call ", i_, ": the reply's payload differs"));
    } else {
      ++r_.messages;
    }
    ++i_;
    loop_.Post([this] { Next(); });  // the finished call is gone by then
  }

  Echo::Stub& stub_;
  io::Reactor& loop_;
  const Run& run_;
  Result& r_;
  uint64_t i_ = 0;
  EchoRequest request_;
  EchoReply reply_;
  std::unique_ptr<rpc::ClientContext> context_;
  absl::Time start_;
};

// Server streaming: OnRead checks each reply as it comes.
class StreamReader final : public rpc::ClientReadReactor<EchoReply> {
 public:
  StreamReader(const Run& run, Result& r) : run_(run), r_(r) {
    request_.set_payload(Pattern(run.size, 7));
    request_.set_count(static_cast<uint32_t>(run.count));
  }
  void Begin(Echo::Stub& stub) {
    context_.set_timeout(run_.timeout);
    last_ = absl::Now();
    stub.ServerStream(&context_, request_, this);
  }
  void OnRead(const EchoReply& reply) override {
    const absl::Time now = absl::Now();
    r_.latencies.push_back(now - last_);  // gap between replies
    last_ = now;
    if (reply.sequence() != r_.messages || reply.payload() != request_.payload()) {
      r_.Fail(absl::StrCat("reply ", r_.messages, " is wrong (sequence ", reply.sequence(), ")"));
    }
    ++r_.messages;
  }
  void OnDone(const absl::Status& s) override {
    if (!s.ok()) r_.Fail(s.ToString());
    if (r_.messages != run_.count) {
      r_.Fail(absl::StrCat("got ", r_.messages, " replies, wanted ", run_.count));
    }
    done_.set_value();
  }
  std::promise<void> done_;

 private:
  const Run& run_;
  Result& r_;
  rpc::ClientContext context_;
  EchoRequest request_;
  absl::Time last_;
};

// Client streaming: each request is written from the last one's OnWriteDone.
class StreamWriter final : public rpc::ClientWriteReactor<EchoRequest, EchoReply> {
 public:
  StreamWriter(const Run& run, Result& r) : run_(run), r_(r) {}
  void Begin(Echo::Stub& stub) {
    context_.set_timeout(run_.timeout);
    start_ = absl::Now();
    stub.ClientStream(&context_, &reply_, this);
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (ok) Next();  // else the call is ending: OnDone says why
  }
  void OnDone(const absl::Status& s) override {
    r_.latencies.push_back(absl::Now() - start_);
    if (!s.ok()) {
      r_.Fail(s.ToString());
    } else if (reply_.sequence() != run_.count || reply_.payload() != expected_) {
      r_.Fail(absl::StrCat("the reply counts ", reply_.sequence(), " messages of ", run_.count,
                           reply_.payload() == expected_ ? "" : "; its payload differs"));
    } else {
      r_.messages = run_.count;
    }
    done_.set_value();
  }
  std::promise<void> done_;

 private:
  void Next() {
    if (written_ == run_.count) return StartWritesDone();
    EchoRequest request;
    request.set_payload(Pattern(run_.size, written_++));
    expected_ += request.payload();
    StartWrite(request);
  }
  const Run& run_;
  Result& r_;
  rpc::ClientContext context_;
  EchoReply reply_;
  std::string expected_;
  uint64_t written_ = 0;
  absl::Time start_;
};

// Bidi: a ping-pong; each reply starts the next request.
class PingPong final : public rpc::ClientBidiReactor<EchoRequest, EchoReply> {
 public:
  PingPong(const Run& run, Result& r) : run_(run), r_(r) {}
  void Begin(Echo::Stub& stub) {
    context_.set_timeout(run_.timeout);
    stub.Bidi(&context_, this);
    Send();
  }
  void OnRead(const EchoReply& reply) override {
    r_.latencies.push_back(absl::Now() - start_);
    if (reply.sequence() != sent_ - 1 || reply.payload() != request_.payload()) {
      r_.Fail(absl::StrCat("reply ", sent_ - 1, " is wrong"));
    } else {
      ++r_.messages;
    }
    if (sent_ == run_.count) return StartWritesDone();
    Send();
  }
  void OnDone(const absl::Status& s) override {
    if (!s.ok()) r_.Fail(s.ToString());
    if (r_.messages != run_.count) {
      r_.Fail(absl::StrCat("the stream ended at message ", r_.messages));
    }
    done_.set_value();
  }
  std::promise<void> done_;

 private:
  void Send() {
    request_.set_payload(Pattern(run_.size, sent_++));
    start_ = absl::Now();
    StartWrite(request_);  // serialized here: request_ may change after
  }
  const Run& run_;
  Result& r_;
  rpc::ClientContext context_;
  EchoRequest request_;
  uint64_t sent_ = 0;
  absl::Time start_;
};

// Starts |call| on the loop and waits for its end.
template <typename Call>
void StartOnLoopAndWait(io::Reactor& loop, Call& call, Echo::Stub& stub) {
  std::future<void> done = call.done_.get_future();
  loop.Post([&] { call.Begin(stub); });
  done.wait();
}

}  // namespace

void RunBlocking(Echo::Stub& stub, const Run& run, Result& r) {
  if (run.mode == "unary") BlockingUnary(stub, run, r);
  if (run.mode == "server-stream") BlockingServerStream(stub, run, r);
  if (run.mode == "client-stream") BlockingClientStream(stub, run, r);
  if (run.mode == "bidi") BlockingBidi(stub, run, r);
}

void RunCallback(Echo::Stub& stub, io::Reactor& loop, const Run& run, Result& r) {
  if (run.mode == "unary") {
    UnaryChain chain(stub, loop, run, r);
    std::future<void> done = chain.done_.get_future();
    loop.Post([&] { chain.Next(); });
    done.wait();
  }
  if (run.mode == "server-stream") {
    StreamReader reader(run, r);
    StartOnLoopAndWait(loop, reader, stub);
  }
  if (run.mode == "client-stream") {
    if (run.count * run.size > kMaxAccumulated) {
      return r.Fail(absl::StrCat("client-stream: count x size must stay within ",
                                 kMaxAccumulated, " bytes"));
    }
    StreamWriter writer(run, r);
    StartOnLoopAndWait(loop, writer, stub);
  }
  if (run.mode == "bidi") {
    PingPong game(run, r);
    StartOnLoopAndWait(loop, game, stub);
  }
}

}  // namespace echo_example
}  // namespace vrpc
