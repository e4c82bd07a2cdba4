// File: core/rpc/worker_pool.h
//
// WorkerPool: threads for RPC handlers, so blocking handler code never runs
// on a reactor thread. Threads are started on demand up to |max_threads| and
// then kept; beyond the maximum, tasks wait in FIFO order (so handlers that
// block for a long time, like long-lived streams, need max_threads at least
// the number of such calls in flight).
#ifndef VRPC_CORE_RPC_WORKER_POOL_H_
#define VRPC_CORE_RPC_WORKER_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>


namespace vrpc {
namespace rpc {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads);
  // Runs every queued task, then joins all threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task);
  size_t threads() const;

 private:
  void Loop();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  size_t live_ = 0;
  bool stopping_ = false;
};

}  // namespace rpc
}  // namespace vrpc

#endif  // VRPC_CORE_RPC_WORKER_POOL_H_
