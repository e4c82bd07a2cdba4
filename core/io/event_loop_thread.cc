#include "core/io/event_loop_thread.h"

#include <future>
#include <utility>

#include <pthread.h>

#include "core/base/logging.h"

namespace vrpc {
namespace io {

absl::StatusOr<std::unique_ptr<EventLoopThread>> EventLoopThread::Start(std::string name) {
  absl::StatusOr<std::unique_ptr<UringReactor>> reactor = UringReactor::Create();
  if (!reactor.ok()) return reactor.status();
  std::unique_ptr<EventLoopThread> loop(new EventLoopThread());
  loop->reactor_ = *std::move(reactor);
  std::promise<void> started;
  EventLoopThread* self = loop.get();
  loop->thread_ = std::thread([self, &started, name = std::move(name)] {
    self->thread_id_.store(std::this_thread::get_id());
    ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
    started.set_value();
    absl::Status s = self->reactor_->Run();
    if (!s.ok()) VRPC_LOG(ERROR) << "event loop: " << s;
  });
  started.get_future().wait();
  return loop;
}

EventLoopThread::~EventLoopThread() {
  reactor_->Stop();
  if (thread_.joinable()) thread_.join();
}

void EventLoopThread::RunSync(const std::function<void()>& fn) {
  if (InLoopThread()) {
    fn();
    return;
  }
  std::promise<void> done;
  reactor_->Post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace io
}  // namespace vrpc
