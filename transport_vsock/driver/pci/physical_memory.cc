#include "transport_vsock/driver/pci/physical_memory.h"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace {

constexpr size_t kSmallPage = 4096;
constexpr uint64_t kPfnMask = (uint64_t{1} << 55) - 1;
constexpr uint64_t kPresent = uint64_t{1} << 63;

bool IsPowerOfTwo(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

int HugeFlag(size_t page_size) {
  if (page_size == kSmallPage) return 0;
  int log2 = 0;
  while ((size_t{1} << log2) < page_size) ++log2;
  return MFD_HUGETLB | (log2 << MFD_HUGE_SHIFT);
}

}  // namespace

VirtToPhys PagemapVirtToPhys(std::string path) {
  return [path = std::move(path)](const void* va) -> absl::StatusOr<uint64_t> {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
    const uint64_t addr = reinterpret_cast<uintptr_t>(va);
    uint64_t entry = 0;
    const off_t at = static_cast<off_t>(addr / kSmallPage * sizeof(entry));
    if (::pread(fd.get(), &entry, sizeof(entry), at) != static_cast<ssize_t>(sizeof(entry))) {
      return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
    }
    if ((entry & kPresent) == 0) {
      return absl::FailedPreconditionError(absl::StrCat("page at 0x", absl::Hex(addr),
                                                        " not present"));
    }
    const uint64_t pfn = entry & kPfnMask;
    if (pfn == 0) {
      return absl::PermissionDeniedError(absl::StrCat(
          path, " shows no physical addresses: the UIO bus needs root (CAP_SYS_ADMIN)"));
    }
    return pfn * kSmallPage + addr % kSmallPage;
  };
}

absl::StatusOr<std::unique_ptr<PhysicalMemory>> PhysicalMemory::Create(
    PhysicalMemoryOptions options) {
  if (!IsPowerOfTwo(options.page_size) || options.page_size < kSmallPage || options.bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("DMA pool of ", options.bytes, " bytes in pages of ", options.page_size));
  }
  if (!options.virt_to_phys) options.virt_to_phys = PagemapVirtToPhys();
  options.bytes = (options.bytes + options.page_size - 1) / options.page_size * options.page_size;
  std::unique_ptr<PhysicalMemory> m(new PhysicalMemory());
  if (absl::Status s = m->Map(options); !s.ok()) return s;
  std::vector<virtqueue::MemoryRegion> regions;
  for (const Run& r : m->runs_) regions.push_back({r.phys, r.size, r.host});
  absl::StatusOr<virtqueue::GuestMemory> memory =
      virtqueue::GuestMemory::Create(std::move(regions), m->mapping_);
  if (!memory.ok()) return memory.status();
  m->memory_ = *std::move(memory);
  return m;
}

absl::Status PhysicalMemory::Map(const PhysicalMemoryOptions& o) {
  const size_t page = o.page_size;
  const size_t pages = o.bytes / page;
  mapping_->fd.Reset(::memfd_create("vrpc-dma", MFD_CLOEXEC | HugeFlag(page)));
  if (!mapping_->fd.valid()) return absl::ErrnoToStatus(errno, "memfd_create (hugetlb)");
  if (::ftruncate(mapping_->fd.get(), static_cast<off_t>(o.bytes)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate the DMA memfd");
  }
  // 1. Populate the pages and learn where they are.
  void* first = ::mmap(nullptr, o.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       mapping_->fd.get(), 0);
  if (first == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "mapping ", o.bytes, " bytes of DMA memory in ", page, "-byte pages: ",
        std::strerror(errno), page > kSmallPage ? " (reserve hugepages: vm.nr_hugepages)" : ""));
  }
  std::vector<uint64_t> phys(pages);
  absl::Status status;
  for (size_t i = 0; i < pages && status.ok(); ++i) {
    uint8_t* p = static_cast<uint8_t*>(first) + i * page;
    *reinterpret_cast<volatile uint8_t*>(p) = 0;  // present, whatever MAP_POPULATE did
    absl::StatusOr<uint64_t> pa = o.virt_to_phys(p);
    if (!pa.ok()) status = pa.status();
    else if (*pa % page != 0) status = absl::InternalError("a page that is not page-aligned");
    else phys[i] = *pa;
  }
  ::munmap(first, o.bytes);  // the memfd keeps the pages
  if (!status.ok()) return status;
  // 2. Map them again in physical order.
  std::vector<size_t> order(pages);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return phys[a] < phys[b]; });
  Mapping& m = *mapping_;
  m.reserve_size = o.bytes + page;
  void* reserve = ::mmap(nullptr, m.reserve_size, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) return absl::ErrnoToStatus(errno, "reserving DMA address space");
  m.reserve = static_cast<uint8_t*>(reserve);
  uint8_t* base = reinterpret_cast<uint8_t*>(
      (reinterpret_cast<uintptr_t>(m.reserve) + page - 1) / page * page);
  for (size_t k = 0; k < pages; ++k) {
    const size_t i = order[k];
    if (k > 0 && phys[i] == phys[order[k - 1]]) {
      return absl::InternalError("two DMA pages at one physical address");
    }
    void* at = ::mmap(base + k * page, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                      mapping_->fd.get(), static_cast<off_t>(i * page));
    if (at == MAP_FAILED) return absl::ErrnoToStatus(errno, "mapping a DMA page");
    if (k > 0 && phys[i] == phys[order[k - 1]] + page) {
      runs_.back().size += page;
    } else {
      runs_.push_back(Run{phys[i], base + k * page, page, 0});
    }
  }
  if (::mlock(base, o.bytes) != 0) return absl::ErrnoToStatus(errno, "mlock DMA memory");
  return absl::OkStatus();
}

PhysicalMemory::Mapping::~Mapping() {
  if (reserve != nullptr) ::munmap(reserve, reserve_size);
}

size_t PhysicalMemory::largest_run() const {
  size_t largest = 0;
  for (const Run& r : runs_) largest = std::max(largest, r.size);
  return largest;
}

absl::StatusOr<DmaRegion> PhysicalMemory::Allocate(size_t size) {
  const size_t rounded = (size + kSmallPage - 1) / kSmallPage * kSmallPage;
  for (Run& r : runs_) {
    if (size == 0 || rounded > r.size - r.used) continue;
    DmaRegion region;
    region.host = r.host + r.used;
    region.device_addr = r.phys + r.used;
    region.size = rounded;
    region.keepalive = mapping_;
    r.used += rounded;
    return region;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "no physically contiguous DMA run has ", size, " bytes left (", runs_.size(),
      " runs, the largest ", largest_run(), " bytes)"));
}

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
