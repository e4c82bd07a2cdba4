#include "transport_vsock/vhost_user/memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace vhost_user {
namespace {

std::atomic<uint64_t> g_live_bytes{0};
std::atomic<uint64_t> g_live_mappings{0};

// True if [a, a + a_len) and [b, b + b_len) intersect. Callers guarantee
// that neither sum overflows (CheckMemoryRegion).
bool Overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a < b + b_len && b < a + a_len;
}

bool RangeInside(uint64_t base, uint64_t size, uint64_t addr, uint64_t len) {
  return addr >= base && addr - base <= size && len <= size - (addr - base);
}

// Checks a whole prospective table: each region sane, no overlaps in either
// address space, count and total size within |limits|.
absl::Status CheckLayout(absl::Span<const MemoryRegionDesc> regions,
                         const MemoryTable::Limits& limits) {
  if (regions.size() > limits.max_regions) {
    return absl::InvalidArgumentError(absl::StrCat(
        regions.size(), " memory regions (max ", limits.max_regions, ")"));
  }
  uint64_t total = 0;
  for (size_t i = 0; i < regions.size(); ++i) {
    const MemoryRegionDesc& r = regions[i];
    if (absl::Status s = CheckMemoryRegion(r); !s.ok()) return s;
    if (__builtin_add_overflow(total, r.size, &total) ||
        total > limits.max_total_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "memory table larger than ", limits.max_total_bytes, " bytes"));
    }
    for (size_t j = 0; j < i; ++j) {
      const MemoryRegionDesc& o = regions[j];
      if (Overlaps(r.guest_addr, r.size, o.guest_addr, o.size)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "memory regions ", j, " and ", i, " overlap in guest memory"));
      }
      if (Overlaps(r.user_addr, r.size, o.user_addr, o.size)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "memory regions ", j, " and ", i, " overlap in user addresses"));
      }
    }
  }
  return absl::OkStatus();
}

uint64_t MapAlignment(const struct stat& st) {
  const long page = ::sysconf(_SC_PAGESIZE);
  uint64_t align = page > 0 ? static_cast<uint64_t>(page) : 4096;
  // hugetlbfs reports its page size in st_blksize and needs mappings aligned
  // to it; tmpfs/memfd report the base page size.
  const uint64_t blk = static_cast<uint64_t>(st.st_blksize);
  if (blk > align && blk <= (uint64_t{1} << 30) && (blk & (blk - 1)) == 0) {
    align = blk;
  }
  return align;
}

}  // namespace

class MemoryTable::Mapping {
 public:
  Mapping(void* base, size_t length) : base_(base), length_(length) {
    g_live_bytes.fetch_add(length_, std::memory_order_relaxed);
    g_live_mappings.fetch_add(1, std::memory_order_relaxed);
  }
  ~Mapping() {
    if (::munmap(base_, length_) != 0) {
      VRPC_LOG(ERROR) << "munmap of guest memory failed: errno " << errno;
    }
    g_live_bytes.fetch_sub(length_, std::memory_order_relaxed);
    g_live_mappings.fetch_sub(1, std::memory_order_relaxed);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  // Maps |region| from |fd| (not closed here). Returns the mapping and, in
  // |*host|, where region.guest_addr lands.
  static absl::StatusOr<std::shared_ptr<const Mapping>> Create(
      const MemoryRegionDesc& region, int fd, uint8_t** host);

 private:
  void* base_;
  size_t length_;
};

absl::StatusOr<std::shared_ptr<const MemoryTable::Mapping>>
MemoryTable::Mapping::Create(const MemoryRegionDesc& region, int fd,
                             uint8_t** host) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, "fstat");
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        "memory region fd is not a regular file (memfd, tmpfs, hugetlbfs)");
  }
  // CheckMemoryRegion ruled out overflow of mmap_offset + size.
  const uint64_t end = region.mmap_offset + region.size;
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < end) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory region [", region.mmap_offset, ", ", end,
        ") extends past the end of its file (", st.st_size, " bytes)"));
  }
  const uint64_t align = MapAlignment(st);
  const uint64_t map_offset = region.mmap_offset & ~(align - 1);
  const uint64_t delta = region.mmap_offset - map_offset;
  uint64_t length = delta + region.size;  // <= end: cannot overflow
  if (length > UINT64_MAX - (align - 1)) {
    return absl::InvalidArgumentError("memory region too large to map");
  }
  length = (length + align - 1) & ~(align - 1);
  if (length > SIZE_MAX || map_offset > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("memory region too large to map");
  }
  void* base = ::mmap(nullptr, static_cast<size_t>(length),
                      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                      static_cast<off_t>(map_offset));
  if (base == MAP_FAILED) {
    return absl::ErrnoToStatus(errno, "mmap of guest memory region");
  }
  // Guest memory has no business in our core dumps; failure is harmless.
  (void)::madvise(base, static_cast<size_t>(length), MADV_DONTDUMP);
  *host = static_cast<uint8_t*>(base) + delta;
  return std::make_shared<const Mapping>(base, static_cast<size_t>(length));
}

MemoryTable::~MemoryTable() = default;

std::shared_ptr<const MemoryTable> MemoryTable::Empty() {
  return std::shared_ptr<const MemoryTable>(new MemoryTable());
}

absl::StatusOr<std::shared_ptr<const MemoryTable>> MemoryTable::Map(
    absl::Span<const MemoryRegionDesc> regions, std::vector<UniqueFd> fds,
    const Limits& limits) {
  if (fds.size() != regions.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(regions.size(), " memory regions but ", fds.size(),
                     " descriptors"));
  }
  if (absl::Status s = CheckLayout(regions, limits); !s.ok()) return s;
  std::vector<std::pair<MappedRegion, std::shared_ptr<const Mapping>>> built;
  for (size_t i = 0; i < regions.size(); ++i) {
    MappedRegion mapped;
    mapped.guest_addr = regions[i].guest_addr;
    mapped.size = regions[i].size;
    mapped.user_addr = regions[i].user_addr;
    mapped.mmap_offset = regions[i].mmap_offset;
    absl::StatusOr<std::shared_ptr<const Mapping>> mapping =
        Mapping::Create(regions[i], fds[i].get(), &mapped.host_addr);
    if (!mapping.ok()) {
      // Regions mapped so far are unmapped as |built| goes away.
      return absl::Status(mapping.status().code(),
                          absl::StrCat("region ", i, ": ",
                                       mapping.status().message()));
    }
    built.emplace_back(mapped, *std::move(mapping));
  }
  std::sort(built.begin(), built.end(), [](const auto& a, const auto& b) {
    return a.first.guest_addr < b.first.guest_addr;
  });
  std::shared_ptr<MemoryTable> table(new MemoryTable());
  for (auto& [region, mapping] : built) {
    table->regions_.push_back(region);
    table->mappings_.push_back(std::move(mapping));
    table->total_size_ += region.size;
  }
  // |fds| are closed when this function returns; the mappings stay.
  return std::shared_ptr<const MemoryTable>(std::move(table));
}

absl::StatusOr<std::shared_ptr<const MemoryTable>> MemoryTable::WithRegionAdded(
    const MemoryRegionDesc& region, UniqueFd fd, const Limits& limits) const {
  std::vector<MemoryRegionDesc> all;
  all.reserve(regions_.size() + 1);
  for (const MappedRegion& r : regions_) {
    all.push_back({r.guest_addr, r.size, r.user_addr, r.mmap_offset});
  }
  all.push_back(region);
  if (absl::Status s = CheckLayout(all, limits); !s.ok()) return s;
  MappedRegion mapped;
  mapped.guest_addr = region.guest_addr;
  mapped.size = region.size;
  mapped.user_addr = region.user_addr;
  mapped.mmap_offset = region.mmap_offset;
  absl::StatusOr<std::shared_ptr<const Mapping>> mapping =
      Mapping::Create(region, fd.get(), &mapped.host_addr);
  if (!mapping.ok()) return mapping.status();
  std::shared_ptr<MemoryTable> table(new MemoryTable());
  bool inserted = false;
  for (size_t i = 0; i <= regions_.size(); ++i) {
    if (!inserted &&
        (i == regions_.size() || region.guest_addr < regions_[i].guest_addr)) {
      table->regions_.push_back(mapped);
      table->mappings_.push_back(*mapping);
      inserted = true;
    }
    if (i < regions_.size()) {
      table->regions_.push_back(regions_[i]);
      table->mappings_.push_back(mappings_[i]);
    }
  }
  table->total_size_ = total_size_ + region.size;
  return std::shared_ptr<const MemoryTable>(std::move(table));
}

absl::StatusOr<std::shared_ptr<const MemoryTable>>
MemoryTable::WithRegionRemoved(const MemoryRegionDesc& region) const {
  std::shared_ptr<MemoryTable> table(new MemoryTable());
  bool found = false;
  for (size_t i = 0; i < regions_.size(); ++i) {
    const MappedRegion& r = regions_[i];
    if (!found && r.guest_addr == region.guest_addr &&
        r.user_addr == region.user_addr && r.size == region.size) {
      found = true;
      continue;
    }
    table->regions_.push_back(r);
    table->mappings_.push_back(mappings_[i]);
    table->total_size_ += r.size;
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat(
        "no memory region at guest 0x", absl::Hex(region.guest_addr),
        " user 0x", absl::Hex(region.user_addr), " size 0x",
        absl::Hex(region.size)));
  }
  return std::shared_ptr<const MemoryTable>(std::move(table));
}

const MappedRegion* MemoryTable::FindGuest(uint64_t guest_addr,
                                           uint64_t len) const {
  for (const MappedRegion& r : regions_) {
    if (RangeInside(r.guest_addr, r.size, guest_addr, len)) return &r;
  }
  return nullptr;
}

const MappedRegion* MemoryTable::FindUser(uint64_t user_addr,
                                          uint64_t len) const {
  for (const MappedRegion& r : regions_) {
    if (RangeInside(r.user_addr, r.size, user_addr, len)) return &r;
  }
  return nullptr;
}

uint8_t* MemoryTable::GuestToHost(uint64_t guest_addr, uint64_t len) const {
  const MappedRegion* r = FindGuest(guest_addr, len);
  if (r == nullptr) return nullptr;
  return r->host_addr + (guest_addr - r->guest_addr);
}

absl::StatusOr<uint64_t> MemoryTable::UserToGuest(uint64_t user_addr,
                                                  uint64_t len) const {
  const MappedRegion* r = FindUser(user_addr, len);
  if (r == nullptr) {
    return absl::OutOfRangeError(absl::StrCat(
        "user address range [0x", absl::Hex(user_addr), ", +0x", absl::Hex(len),
        ") is not inside one memory region"));
  }
  return r->guest_addr + (user_addr - r->user_addr);
}

uint64_t MemoryTable::LiveMappedBytes() {
  return g_live_bytes.load(std::memory_order_relaxed);
}

uint64_t MemoryTable::LiveMappings() {
  return g_live_mappings.load(std::memory_order_relaxed);
}

}  // namespace vhost_user
}  // namespace vrpc
