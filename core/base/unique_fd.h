// File: core/base/unique_fd.h
//
// UniqueFd owns one file descriptor and closes it exactly once.
#ifndef VRPC_CORE_BASE_UNIQUE_FD_H_
#define VRPC_CORE_BASE_UNIQUE_FD_H_

#include "absl/status/statusor.h"

namespace vrpc {

// Owns a file descriptor. Move-only; the destructor closes the descriptor if
// it is valid (>= 0). Not thread-safe: one owner at a time, as with
// std::unique_ptr.
class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of |fd|. A negative |fd| makes an empty UniqueFd.
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // The descriptor, still owned by this object; -1 when empty.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing. Returns the descriptor (or -1).
  [[nodiscard]] int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the current descriptor (if any) and takes ownership of |fd|.
  // close() errors are ignored: the descriptor is gone either way on Linux.
  void Reset(int fd = -1);

  // Returns a new UniqueFd holding a duplicate (F_DUPFD_CLOEXEC) of this
  // descriptor. Errors come from the syscall (absl::ErrnoToStatus).
  [[nodiscard]] absl::StatusOr<UniqueFd> Duplicate() const;

 private:
  int fd_ = -1;
};

}  // namespace vrpc

#endif  // VRPC_CORE_BASE_UNIQUE_FD_H_
