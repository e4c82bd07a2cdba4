#include "transport_vsock/driver/pci/registers.h"

#include "core/base/logging.h"

namespace vrpc {
namespace vsock {
namespace pci {

// Virtio registers are little-endian; so is every host vrpc runs on (x86-64,
// aarch64 LE), so the accesses need no swapping.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian hosts only");

uint32_t MappedRegisters::Read(uint64_t offset, int width) {
  VRPC_CHECK(FitsIn(offset, static_cast<uint64_t>(width), size_));
  volatile uint8_t* p = base_ + offset;
  switch (width) {
    case 1:
      return *p;
    case 2:
      return *reinterpret_cast<volatile uint16_t*>(p);
    case 4:
      return *reinterpret_cast<volatile uint32_t*>(p);
  }
  VRPC_CHECK(false) << "register width " << width;
  return 0;
}

void MappedRegisters::Write(uint64_t offset, int width, uint32_t value) {
  VRPC_CHECK(FitsIn(offset, static_cast<uint64_t>(width), size_));
  volatile uint8_t* p = base_ + offset;
  switch (width) {
    case 1:
      *p = static_cast<uint8_t>(value);
      return;
    case 2:
      *reinterpret_cast<volatile uint16_t*>(p) = static_cast<uint16_t>(value);
      return;
    case 4:
      *reinterpret_cast<volatile uint32_t*>(p) = value;
      return;
  }
  VRPC_CHECK(false) << "register width " << width;
}

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
