#include "transport_vsock/virtqueue/testing/fake_guest_memory.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/base/logging.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VRPC_FAKE_MEMORY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define VRPC_FAKE_MEMORY_ASAN 1
#endif

#ifdef VRPC_FAKE_MEMORY_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace vrpc {
namespace virtqueue {
namespace testing {

struct FakeGuestMemory::Storage {
  std::vector<MemoryRegion> regions;
  bool poisoned = false;

  void SetPoison(bool on) {
#ifdef VRPC_FAKE_MEMORY_ASAN
    for (const MemoryRegion& r : regions) {
      if (on) {
        ASAN_POISON_MEMORY_REGION(r.host_addr, r.size);
      } else {
        ASAN_UNPOISON_MEMORY_REGION(r.host_addr, r.size);
      }
    }
#endif
    poisoned = on;
  }

  ~Storage() {
    SetPoison(false);
    for (const MemoryRegion& r : regions) std::free(r.host_addr);
  }
};

std::vector<FakeRegionSpec> FakeGuestMemory::DefaultLayout() {
  return {{kRegionA, kMiB}, {kRegionB, kMiB}, {kRegionC, kMiB}};
}

FakeGuestMemory::FakeGuestMemory() : FakeGuestMemory(DefaultLayout()) {}

FakeGuestMemory::FakeGuestMemory(std::vector<FakeRegionSpec> layout)
    : storage_(std::make_shared<Storage>()) {
  for (const FakeRegionSpec& spec : layout) {
    constexpr uint64_t kPage = 4096;
    const uint64_t rounded = (spec.size + kPage - 1) / kPage * kPage;
    void* p = std::aligned_alloc(kPage, rounded);
    VRPC_CHECK(p != nullptr) << "cannot allocate " << rounded << " bytes";
    std::memset(p, 0, rounded);
    storage_->regions.push_back(
        MemoryRegion{spec.guest_addr, spec.size, static_cast<uint8_t*>(p)});
  }
  absl::StatusOr<GuestMemory> memory =
      GuestMemory::Create(storage_->regions, std::shared_ptr<const void>(storage_));
  VRPC_CHECK(memory.ok()) << memory.status();
  memory_ = *std::move(memory);
}

FakeGuestMemory::~FakeGuestMemory() = default;

uint8_t* FakeGuestMemory::At(uint64_t addr, uint64_t len) {
  absl::StatusOr<uint8_t*> p = memory_.Translate(addr, len);
  VRPC_CHECK(p.ok()) << p.status();
  return *p;
}

void FakeGuestMemory::Write(uint64_t addr, absl::Span<const uint8_t> bytes) {
  size_t done = 0;
  absl::Status s = memory_.ForEachSegment(addr, bytes.size(),
                                          [&](uint64_t, absl::Span<uint8_t> host) {
                                            std::memcpy(host.data(), bytes.data() + done,
                                                        host.size());
                                            done += host.size();
                                          });
  VRPC_CHECK(s.ok()) << s;
}

void FakeGuestMemory::Read(uint64_t addr, absl::Span<uint8_t> out) const {
  size_t done = 0;
  absl::Status s = memory_.ForEachSegment(addr, out.size(),
                                          [&](uint64_t, absl::Span<uint8_t> host) {
                                            std::memcpy(out.data() + done, host.data(),
                                                        host.size());
                                            done += host.size();
                                          });
  VRPC_CHECK(s.ok()) << s;
}

void FakeGuestMemory::Fill(uint8_t byte) {
  for (const MemoryRegion& r : storage_->regions) std::memset(r.host_addr, byte, r.size);
}

void FakeGuestMemory::Poison() { storage_->SetPoison(true); }
void FakeGuestMemory::Unpoison() { storage_->SetPoison(false); }

bool FakeGuestMemory::PoisoningSupported() {
#ifdef VRPC_FAKE_MEMORY_ASAN
  return true;
#else
  return false;
#endif
}

}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc
