// File: transport_vsock/virtqueue/testing/fake_guest_memory.h
//
// FakeGuestMemory: heap buffers presented as guest memory with holes and
// adjacent regions, for tests and fuzzers (testonly).
//
// Default layout (DefaultLayout()):
//
//   region A  [0x000000, 0x100000)   1 MiB
//   hole      [0x100000, 0x200000)
//   region B  [0x200000, 0x300000)   1 MiB
//   region C  [0x300000, 0x400000)   1 MiB, adjacent to B
//
// Each region is a SEPARATE host allocation, so code that walks off the end
// of a region instead of re-translating (the CVE-2019-18960 pattern) hits
// memory that is not the next guest byte — and, under ASan, a redzone.
//
// Poison() marks every region unaddressable under AddressSanitizer (a no-op
// elsewhere): any access then crashes, which proves "touches no guest
// memory" in ASan builds; the observers in read_once_checker.h prove it in
// every build.
//
// Not thread-safe. The host buffers live as long as the FakeGuestMemory or
// any GuestMemory obtained from it (memory().keepalive() owns them).
#ifndef VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_FAKE_GUEST_MEMORY_H_
#define VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_FAKE_GUEST_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "transport_vsock/virtqueue/guest_memory.h"

namespace vrpc {
namespace virtqueue {
namespace testing {

inline constexpr uint64_t kMiB = 1024 * 1024;
inline constexpr uint64_t kRegionA = 0;
inline constexpr uint64_t kHole = 1 * kMiB;
inline constexpr uint64_t kRegionB = 2 * kMiB;
inline constexpr uint64_t kRegionC = 3 * kMiB;  // == end of B
inline constexpr uint64_t kDefaultEnd = 4 * kMiB;

struct FakeRegionSpec {
  uint64_t guest_addr = 0;
  uint64_t size = 0;
};

class FakeGuestMemory {
 public:
  static std::vector<FakeRegionSpec> DefaultLayout();

  // Allocates zeroed regions for |layout| (CHECK-fails on an invalid layout).
  FakeGuestMemory();
  explicit FakeGuestMemory(std::vector<FakeRegionSpec> layout);
  ~FakeGuestMemory();
  FakeGuestMemory(const FakeGuestMemory&) = delete;
  FakeGuestMemory& operator=(const FakeGuestMemory&) = delete;

  // The GuestMemory view (no observer; use WithObserver on it).
  const GuestMemory& memory() const { return memory_; }

  // Host pointer for test setup: [addr, addr + len) must lie in one region
  // (CHECKed). Accesses through it are not observed.
  uint8_t* At(uint64_t addr, uint64_t len = 1);

  // Unobserved copies for test setup and inspection; the range may cross
  // adjacent regions (CHECKed to be mapped).
  void Write(uint64_t addr, absl::Span<const uint8_t> bytes);
  void Read(uint64_t addr, absl::Span<uint8_t> out) const;
  void Fill(uint8_t byte);

  // ASan poisoning of every region (no-ops without ASan).
  void Poison();
  void Unpoison();
  static bool PoisoningSupported();

 private:
  struct Storage;
  std::shared_ptr<Storage> storage_;
  GuestMemory memory_;
};

}  // namespace testing
}  // namespace virtqueue
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_VIRTQUEUE_TESTING_FAKE_GUEST_MEMORY_H_
