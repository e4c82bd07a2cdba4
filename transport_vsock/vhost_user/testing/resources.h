// File: transport_vsock/vhost_user/testing/resources.h
//
// Test helpers that observe and create process resources: open descriptor
// counts (/proc/self/fd), memfd-backed fake guest RAM, eventfds. Test-only;
// errors CHECK-fail (they are bugs in the test environment, not input).
#ifndef VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_RESOURCES_H_
#define VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_RESOURCES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/unique_fd.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vhost_user {
namespace testing {

// Number of entries in /proc/self/fd (the directory's own descriptor is not
// counted).
size_t CountOpenFds();

// Number of lines of /proc/self/maps that mention |needle| (e.g. the memfd
// name "memfd:vrpc-guest-ram").
size_t CountMappings(absl::string_view needle);

// A new eventfd (EFD_CLOEXEC | EFD_NONBLOCK).
UniqueFd MakeEventFd();

// A memfd of |size| bytes named "vrpc-guest-ram" (see CountMappings).
UniqueFd MakeMemfd(uint64_t size);

// Fake guest RAM: one memfd, mapped here too, so a test can write what "the
// guest" writes and check what the backend maps. Regions describe slices of
// it with their own guest-physical and frontend-user addresses.
class FakeGuestRam {
 public:
  // A memfd of |size| bytes mapped read/write in this process.
  explicit FakeGuestRam(uint64_t size);
  ~FakeGuestRam();
  FakeGuestRam(const FakeGuestRam&) = delete;
  FakeGuestRam& operator=(const FakeGuestRam&) = delete;

  int fd() const { return memfd_.get(); }
  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

  // The fake frontend's "user address" of file offset |offset|: an
  // arbitrary, distinctive base plus the offset (QEMU's would be its own
  // virtual address).
  static constexpr uint64_t kUserBase = 0x7f0000000000ull;
  static uint64_t UserAddr(uint64_t offset) { return kUserBase + offset; }

  // A region covering file bytes [offset, offset + size) at |guest_addr|.
  static MemoryRegionDesc Region(uint64_t guest_addr, uint64_t offset,
                                 uint64_t size);

 private:
  UniqueFd memfd_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VHOST_USER_TESTING_RESOURCES_H_
