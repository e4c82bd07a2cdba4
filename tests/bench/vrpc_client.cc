// File: tests/bench/vrpc_client.cc
#include "tests/bench/vrpc_client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "core/rpc/context.h"
#include "core/rpc/reactors.h"
#include "tests/bench/affinity.h"
#include "tests/bench/bench.pb.h"
#include "tests/bench/stats.h"
#include "transport_vsock/dial/dial.h"

namespace vrpc {
namespace bench {
namespace {

void Complain(const char* what, const absl::Status& s) {
  std::fprintf(stderr, "vrpc client: %s: %s\n", what, s.ToString().c_str());
}

// |window| async Echo calls in flight; each completion starts the next call
// on a later loop turn (the finished call is gone by then). With
// |latencies|, each call's time from start to completion is recorded there.
class Pipeline {
 public:
  Pipeline(Bench::Stub& stub, io::Reactor& reactor, int total, int window, size_t bytes,
           std::vector<double>* latencies = nullptr)
      : stub_(stub), reactor_(reactor), total_(total), slots_(window), latencies_(latencies) {
    request_.set_data(std::string(bytes, 'p'));
    if (latencies_ != nullptr) latencies_->reserve(total);
  }
  // On the loop thread.
  void Begin() {
    for (size_t i = 0; i < slots_.size() && started_ < total_; ++i) {
      ++started_;
      Launch(i);
    }
  }
  // False if a call failed. A pipeline that makes no progress for
  // |stall| is cancelled (its calls end CANCELLED) and *stalled is set.
  bool Wait(absl::Duration stall, bool* stalled) {
    std::unique_lock<std::mutex> lock(mu_);
    int last = -1;
    while (completed_ < total_) {
      if (cv_.wait_for(lock, absl::ToChronoNanoseconds(stall),
                       [&] { return completed_ == total_; })) {
        break;
      }
      if (completed_ != last) {
        last = completed_;
        continue;
      }
      *stalled = true;
      std::fprintf(stderr, "vrpc client: pipeline stalled at %d of %d calls; cancelling\n",
                   completed_, total_);
      stop_ = true;
      reactor_.Post([this] {
        for (Slot& slot : slots_) {
          if (slot.context != nullptr) slot.context->TryCancel();
        }
      });
      cv_.wait(lock, [&] { return completed_ == started_.load(); });
      return false;
    }
    return failed_ == 0;
  }

 private:
  struct Slot {
    std::unique_ptr<rpc::ClientContext> context;
    Blob reply;
    Clock::time_point start;
  };
  // Starts a call in slot |i|; the caller counted it in started_.
  void Launch(size_t i) {
    Slot& slot = slots_[i];
    slot.context = std::make_unique<rpc::ClientContext>();
    slot.start = Clock::now();
    stub_.AsyncEcho(slot.context.get(), request_, &slot.reply,
                    [this, i](absl::Status s) { Done(i, s); });
  }
  void Done(size_t i, const absl::Status& s) {
    if (latencies_ != nullptr) latencies_->push_back(NsSince(slots_[i].start));
    if (!s.ok() && failed_++ == 0) Complain("pipelined Echo", s);
    // Counted here, not in Launch: several completions may run before the
    // posted launches do, and must not start more than total_ calls.
    if (started_ < total_ && !stop_) {
      ++started_;
      reactor_.Post([this, i] { Launch(i); });
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (++completed_ == total_) cv_.notify_all();
  }

  Bench::Stub& stub_;
  io::Reactor& reactor_;
  const int total_;
  Blob request_;
  std::vector<Slot> slots_;
  std::vector<double>* const latencies_;  // loop thread, until Wait returns
  std::atomic<int> started_{0};  // written on the loop thread
  std::atomic<bool> stop_{false};
  int failed_ = 0;   // loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  int completed_ = 0;
};

}  // namespace

struct VrpcClient::PauseGate {
  std::mutex mu;
  std::condition_variable cv;
  bool paused = false;
  bool holding = false;  // the loop thread is parked
};

absl::StatusOr<std::unique_ptr<VrpcClient>> VrpcClient::Connect(const std::string& target,
                                                                 const std::string& notify_mode,
                                                                 absl::Duration timeout,
                                                                 int loop_cpu) {
  std::unique_ptr<VrpcClient> c(new VrpcClient(target, notify_mode));
  absl::StatusOr<std::unique_ptr<io::EventLoopThread>> loop =
      io::EventLoopThread::Start("bench-client");
  if (!loop.ok()) return loop.status();
  c->loop_ = *std::move(loop);
  if (loop_cpu >= 0 && !PinLoopThread(*c->loop_, loop_cpu)) {
    return absl::InternalError("could not pin the client loop");
  }
  c->gate_ = std::make_shared<PauseGate>();
  absl::Status dialed;
  dial::DialOptions options;
  options.notify_mode = notify_mode;
  const absl::Time t0 = absl::Now();
  c->loop_->RunSync([&] {
    absl::StatusOr<std::unique_ptr<transport::Connector>> connector =
        dial::Dial(target, c->loop_->reactor(), options);
    if (!connector.ok()) {
      dialed = connector.status();
      return;
    }
    c->channel_ = rpc::Channel::Create(*std::move(connector));
  });
  if (!dialed.ok()) return dialed;
  const absl::Time t1 = absl::Now();
  c->dial_time_ = t1 - t0;
  if (!c->channel_->WaitForReady(t1 + timeout)) {
    return absl::UnavailableError("the channel did not become READY: " +
                                  c->channel_->state_info().last_error.ToString());
  }
  c->connect_time_ = absl::Now() - t1;
  c->stub_ = std::make_unique<Bench::Stub>(c->channel_);
  return c;
}

VrpcClient::~VrpcClient() {
  Resume();
  if (channel_ != nullptr) channel_->Shutdown();
  stub_.reset();
  channel_.reset();
  loop_.reset();
}

std::vector<double> VrpcClient::UnaryRttNs(int calls, size_t bytes) {
  Blob request, reply;
  request.set_data(std::string(bytes, 'u'));
  std::vector<double> out;
  out.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    rpc::ClientContext context;
    const Clock::time_point start = Clock::now();
    absl::Status s = stub_->Echo(&context, request, &reply);
    const double ns = NsSince(start);
    if (!s.ok() || reply.data().size() != bytes) {
      Complain("Echo", s.ok() ? absl::DataLossError("short reply") : s);
      return {};
    }
    out.push_back(ns);
  }
  return out;
}

std::vector<double> VrpcClient::CallbackUnaryRttNs(int calls, size_t bytes) {
  std::vector<double> out;
  Pipeline pipeline(*stub_, loop_->reactor(), calls, 1, bytes, &out);
  loop_->reactor().Post([&] { pipeline.Begin(); });
  bool stalled = false;
  if (!pipeline.Wait(absl::Seconds(5), &stalled)) return {};
  return out;
}

double VrpcClient::PipelinedCallsPerSecond(int calls, int window, size_t bytes) {
  Pipeline pipeline(*stub_, loop_->reactor(), calls, window, bytes);
  const Clock::time_point start = Clock::now();
  loop_->reactor().Post([&] { pipeline.Begin(); });
  bool stalled = false;
  if (!pipeline.Wait(absl::Seconds(5), &stalled)) return stalled ? -1 : 0;
  return calls / (NsSince(start) * 1e-9);
}

double VrpcClient::UnaryThroughputGBps(int calls, size_t bytes) {
  Blob request;
  request.set_data(std::string(bytes, 's'));
  Ack ack;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < calls; ++i) {
    rpc::ClientContext context;
    absl::Status s = stub_->Sink(&context, request, &ack);
    if (!s.ok() || ack.bytes() != bytes) {
      Complain("Sink", s.ok() ? absl::DataLossError("wrong count") : s);
      return 0;
    }
  }
  return static_cast<double>(bytes) * calls / NsSince(start);
}

namespace {

// StreamSink by callbacks: each write is started on the loop by the
// previous one's OnWriteDone.
class StreamWriter final : public rpc::ClientWriteReactor<Blob, Ack> {
 public:
  StreamWriter(int messages, size_t bytes) : left_(messages) {
    request_.set_data(std::string(bytes, 'S'));
  }
  void Next() {
    if (left_-- == 0) return StartWritesDone();
    StartWrite(request_);
  }
  void OnWriteDone(bool ok) override {
    if (ok) Next();  // a failed write ends the call: OnDone says why
  }
  void OnDone(const absl::Status& status) override { done_.set_value(status); }

  Ack ack_;
  std::promise<absl::Status> done_;

 private:
  Blob request_;
  int left_;
};

}  // namespace

double VrpcClient::StreamThroughputGBps(int messages, size_t bytes) {
  rpc::ClientContext context;
  context.set_deadline(absl::Now() + absl::Seconds(60));
  StreamWriter writer(messages, bytes);
  std::future<absl::Status> done = writer.done_.get_future();
  const Clock::time_point start = Clock::now();
  loop_->reactor().Post([&] {
    stub_->StreamSink(&context, &writer.ack_, &writer);
    writer.Next();
  });
  const absl::Status s = done.get();
  const double ns = NsSince(start);
  if (!s.ok() || writer.ack_.bytes() != static_cast<uint64_t>(messages) * bytes) {
    Complain("StreamSink (callback)", s.ok() ? absl::DataLossError("wrong count") : s);
    return 0;
  }
  return static_cast<double>(bytes) * messages / ns;
}

double VrpcClient::BlockingStreamThroughputGBps(int messages, size_t bytes) {
  Blob request;
  request.set_data(std::string(bytes, 'S'));
  Ack ack;
  rpc::ClientContext context;
  const Clock::time_point start = Clock::now();
  std::unique_ptr<rpc::ClientWriter<Blob>> writer = stub_->StreamSink(&context, &ack);
  for (int i = 0; i < messages; ++i) {
    if (!writer->Write(request)) break;
  }
  writer->WritesDone();
  absl::Status s = writer->Finish();
  const double ns = NsSince(start);
  if (!s.ok() || ack.bytes() != static_cast<uint64_t>(messages) * bytes) {
    Complain("StreamSink", s.ok() ? absl::DataLossError("wrong count") : s);
    return 0;
  }
  return static_cast<double>(bytes) * messages / ns;
}

std::vector<double> VrpcClient::ConnectTimesUs(int n) {
  std::vector<double> out;
  dial::DialOptions options;
  options.notify_mode = notify_mode_;
  for (int i = 0; i < n; ++i) {
    std::shared_ptr<rpc::Channel> channel;
    absl::Status dialed;
    loop_->RunSync([&] {
      auto connector = dial::Dial(target_, loop_->reactor(), options);
      if (!connector.ok()) {
        dialed = connector.status();
        return;
      }
      channel = rpc::Channel::Create(*std::move(connector));
    });
    if (!dialed.ok()) {
      Complain("Dial", dialed);
      return {};
    }
    const Clock::time_point start = Clock::now();
    const bool ready = channel->WaitForReady(absl::Now() + absl::Seconds(10));
    const double ns = NsSince(start);
    channel->Shutdown();
    channel.reset();
    if (!ready) {
      Complain("connect", absl::UnavailableError("not READY"));
      return {};
    }
    out.push_back(ns / 1e3);
  }
  return out;
}

void VrpcClient::Pause() {
  std::shared_ptr<PauseGate> gate = gate_;
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    gate->paused = true;
  }
  loop_->reactor().Post([gate] {
    std::unique_lock<std::mutex> lock(gate->mu);
    gate->holding = true;
    gate->cv.notify_all();
    gate->cv.wait(lock, [&] { return !gate->paused; });
    gate->holding = false;
  });
  std::unique_lock<std::mutex> lock(gate->mu);
  gate->cv.wait(lock, [&] { return gate->holding; });
}

void VrpcClient::Resume() {
  if (gate_ == nullptr) return;
  std::lock_guard<std::mutex> lock(gate_->mu);
  gate_->paused = false;
  gate_->cv.notify_all();
}

}  // namespace bench
}  // namespace vrpc
