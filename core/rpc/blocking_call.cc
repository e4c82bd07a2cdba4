#include "core/rpc/blocking_call.h"

#include <utility>

namespace vrpc {
namespace rpc {

BlockingCall::BlockingCall(const std::shared_ptr<Channel>& channel, std::string method,
                           ClientContext* context) {
  call_ = ClientCall::Start(channel, std::move(method), context, this);
}

BlockingCall::~BlockingCall() {
  bool finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished = finished_;
  }
  if (!finished) call_->Cancel();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_; });
}

bool BlockingCall::Write(SliceChain message) {
  uint64_t reported_before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return false;
    ++writes_in_flight_;
    reported_before = writes_reported_;
  }
  call_->Write(std::move(message));
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return writes_in_flight_ == 0; });
  // This write's own report decides (one write at a time): the end of the
  // call settles a write without one, and then it was not taken.
  return writes_reported_ > reported_before && last_write_.ok();
}

void BlockingCall::WritesDone() { call_->WritesDone(); }

bool BlockingCall::Read(SliceChain* message) {
  size_t size;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !inbox_.empty() || finished_; });
    if (inbox_.empty()) return false;
    *message = inbox_.pop_front();
    size = message->size();
  }
  call_->Consume(size);
  return true;
}

absl::Status BlockingCall::Finish() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_; });
  inbox_.clear();
  return status_;
}

void BlockingCall::OnMessage(SliceChain message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back(std::move(message));
  }
  cv_.notify_all();
}

void BlockingCall::OnWriteDone(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  last_write_ = status;
  ++writes_reported_;
  if (writes_in_flight_ > 0) --writes_in_flight_;
  cv_.notify_all();
}

void BlockingCall::OnFinish(const absl::Status& status, const Metadata& trailers) {
  // Notify under the lock: once finished_ is seen, the owner may destroy
  // this object (and cv_) at once.
  std::lock_guard<std::mutex> lock(mu_);
  finished_ = true;
  status_ = status;
  writes_in_flight_ = 0;
  cv_.notify_all();
}

namespace {

class UnaryObserver final : public ClientCallObserver {
 public:
  void OnMessage(SliceChain message) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++messages_;
    if (messages_ == 1) response_ = std::move(message);
  }
  void OnFinish(const absl::Status& status, const Metadata& trailers) override {
    std::lock_guard<std::mutex> lock(mu_);  // the waiter may destroy us once done_
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  absl::Status Wait(SliceChain* response) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    if (!status_.ok()) return status_;
    if (messages_ != 1) {
      return absl::InternalError(messages_ == 0 ? "unary call without a response"
                                                : "unary call with several responses");
    }
    *response = std::move(response_);
    return absl::OkStatus();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int messages_ = 0;
  SliceChain response_;
  bool done_ = false;
  absl::Status status_;
};

}  // namespace

absl::Status BlockingUnaryCall(const std::shared_ptr<Channel>& channel, std::string method,
                               ClientContext* context, SliceChain request,
                               SliceChain* response) {
  UnaryObserver observer;
  std::shared_ptr<ClientCall> call = ClientCall::Start(
      channel, std::move(method), context, &observer, std::move(request), /*writes_done=*/true);
  return observer.Wait(response);
}

}  // namespace rpc
}  // namespace vrpc
