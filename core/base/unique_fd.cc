#include "core/base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"

namespace vrpc {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) {
    // Linux releases the descriptor even when close() reports EINTR, so
    // retrying could close an unrelated, newly opened descriptor.
    (void)::close(fd_);
  }
  fd_ = fd;
}

absl::StatusOr<UniqueFd> UniqueFd::Duplicate() const {
  if (fd_ < 0) return absl::FailedPreconditionError("Duplicate on empty UniqueFd");
  int copy = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return absl::ErrnoToStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return UniqueFd(copy);
}

}  // namespace vrpc
