#include "core/rpc/worker_pool.h"

#include <utility>

namespace vrpc {
namespace rpc {

WorkerPool::WorkerPool(size_t max_threads) : max_threads_(max_threads == 0 ? 1 : max_threads) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::Submit(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.push_back(std::move(task));
  if (idle_ > 0) {
    cv_.notify_one();
  } else if (live_ < max_threads_) {
    ++live_;
    threads_.emplace_back([this] { Loop(); });
  }
}

size_t WorkerPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

void WorkerPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (stopping_) break;
    ++idle_;
    cv_.wait(lock, [this] { return !tasks_.empty() || stopping_; });
    --idle_;
  }
}

}  // namespace rpc
}  // namespace vrpc
