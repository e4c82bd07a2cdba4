// File: core/io/event_loop_thread.h
//
// EventLoopThread: a UringReactor running on a thread of its own, for
// programs and tests that want a transport and the RPC layer to run in the
// background while their own threads make blocking calls.
//
//   VRPC_ASSIGN_OR_RETURN(auto loop, io::EventLoopThread::Start("rpc"));
//   loop->RunSync([&] { ... create things that live on the loop ... });
//   ...
//   loop->RunSync([&] { ... destroy them ... });
//   loop.reset();  // stops and joins
#ifndef VRPC_CORE_IO_EVENT_LOOP_THREAD_H_
#define VRPC_CORE_IO_EVENT_LOOP_THREAD_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/io/uring_reactor.h"

namespace vrpc {
namespace io {

class EventLoopThread {
 public:
  static absl::StatusOr<std::unique_ptr<EventLoopThread>> Start(std::string name = "vrpc-loop");
  // Stops the reactor and joins the thread. Objects living on the loop must
  // be gone by then (destroy them with RunSync).
  ~EventLoopThread();
  EventLoopThread(const EventLoopThread&) = delete;
  EventLoopThread& operator=(const EventLoopThread&) = delete;

  Reactor& reactor() { return *reactor_; }
  // Runs |fn| on the loop thread and waits for it. Runs it inline when
  // called from the loop thread itself.
  void RunSync(const std::function<void()>& fn);
  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }

 private:
  EventLoopThread() = default;

  std::unique_ptr<UringReactor> reactor_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
};

}  // namespace io
}  // namespace vrpc

#endif  // VRPC_CORE_IO_EVENT_LOOP_THREAD_H_
