// File: transport_vsock/virtqueue/testing/read_once_checker.h
//
// Guest-memory observers for tests and fuzzers (testonly):
//
//   AccessLog        records every (kind, addr, len) access, with counters;
//                    "no access after the latch" is `log.size()` unchanged.
//   ReadOnceChecker  fails when any guest byte is read twice within one
//                    scope (HARDENING row 7: double fetch / TOCTOU). A scope
//                    is one chain's processing: BeginScope() before Pop(),
//                    then every read of that chain's header and payload.
//                    It also counts all accesses, like AccessLog.
//
// Attach with `memory.WithObserver(&checker)`. Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_READ_ONCE_CHECKER_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_READ_ONCE_CHECKER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace virtqueue {
namespace testing {

struct Access {
  enum class Kind { kRead, kWrite };
  Kind kind = Kind::kRead;
  uint64_t addr = 0;
  uint64_t len = 0;
};

class AccessLog : public GuestMemoryObserver {
 public:
  void OnRead(uint64_t addr, uint64_t len) override;
  void OnWrite(uint64_t addr, uint64_t len) override;

  const std::vector<Access>& accesses() const { return accesses_; }
  size_t size() const { return accesses_.size(); }
  uint64_t reads() const { return reads_; }
  uint64_t writes() const { return writes_; }
  void Clear();

 private:
  std::vector<Access> accesses_;
  uint64_t reads_ = 0;
  uint64_t writes_ = 0;
};

class ReadOnceChecker : public GuestMemoryObserver {
 public:
  // Forgets the reads of the previous scope (violations are kept).
  void BeginScope();

  void OnRead(uint64_t addr, uint64_t len) override;
  void OnWrite(uint64_t addr, uint64_t len) override;

  // True while no byte was read twice in any scope.
  bool ok() const { return violations_.empty(); }
  // True while no byte was read twice in the current scope.
  bool scope_ok() const { return scope_violations_ == 0; }
  // One line per double read.
  const std::vector<std::string>& violations() const { return violations_; }
  std::string Report() const;

  uint64_t accesses() const { return reads_ + writes_; }
  uint64_t reads() const { return reads_; }
  uint64_t writes() const { return writes_; }

 private:
  // Disjoint read ranges of the current scope: start -> end (exclusive).
  std::map<uint64_t, uint64_t> scope_reads_;
  std::vector<std::string> violations_;
  size_t scope_violations_ = 0;
  uint64_t reads_ = 0;
  uint64_t writes_ = 0;
};

}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_READ_ONCE_CHECKER_H_
