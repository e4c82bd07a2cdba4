#include "transport_vsock/vhost_user/testing/resources.h"

#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "core/base/logging.h"

namespace vrpc {
namespace vhost_user {
namespace testing {

size_t CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  VRPC_CHECK(dir != nullptr) << "opendir /proc/self/fd";
  size_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the DIR's own descriptor
}

size_t CountMappings(absl::string_view needle) {
  std::ifstream maps("/proc/self/maps");
  VRPC_CHECK(maps.good()) << "open /proc/self/maps";
  size_t count = 0;
  std::string line;
  while (std::getline(maps, line)) {
    if (absl::string_view(line).find(needle) != absl::string_view::npos) {
      ++count;
    }
  }
  return count;
}

UniqueFd MakeEventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  VRPC_CHECK(fd.valid()) << "eventfd: errno " << errno;
  return fd;
}

UniqueFd MakeMemfd(uint64_t size) {
  UniqueFd fd(::memfd_create("vrpc-guest-ram", MFD_CLOEXEC));
  VRPC_CHECK(fd.valid()) << "memfd_create: errno " << errno;
  VRPC_CHECK(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0)
      << "ftruncate: errno " << errno;
  return fd;
}

FakeGuestRam::FakeGuestRam(uint64_t size) : memfd_(MakeMemfd(size)), size_(size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   memfd_.get(), 0);
  VRPC_CHECK(p != MAP_FAILED) << "mmap fake guest RAM: errno " << errno;
  data_ = static_cast<uint8_t*>(p);
}

FakeGuestRam::~FakeGuestRam() { ::munmap(data_, size_); }

MemoryRegionDesc FakeGuestRam::Region(uint64_t guest_addr, uint64_t offset,
                                      uint64_t size) {
  MemoryRegionDesc r;
  r.guest_addr = guest_addr;
  r.size = size;
  r.user_addr = UserAddr(offset);
  r.mmap_offset = offset;
  return r;
}

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc
