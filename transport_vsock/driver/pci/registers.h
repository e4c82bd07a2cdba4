// File: transport_vsock/driver/pci/registers.h
//
// RegisterIo: a window of little-endian device registers (one PCI BAR, as
// UIO's sysfs resource mmap, VFIO's region mmap or pread/pwrite, or a test's
// simulated register file reach it). The virtio PCI code (virtio_pci_device.h)
// talks to the device only through this, so every bus and the fakes share it.
//
// MappedRegisters is the mmap implementation: volatile 1/2/4-byte accesses
// (never wider, never merged, in program order on x86).
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PCI_REGISTERS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PCI_REGISTERS_H_

#include <cstdint>
#include <memory>
#include <utility>

namespace vrpc {
namespace vsock {
namespace pci {

class RegisterIo {
 public:
  virtual ~RegisterIo() = default;
  // Bytes in the window.
  virtual uint64_t size() const = 0;
  // |width| is 1, 2 or 4 and [offset, offset + width) lies inside size():
  // callers validate offsets they got from the device first (a violation is
  // our bug: CHECKed). What a read returns is the device's word: untrusted.
  virtual uint32_t Read(uint64_t offset, int width) = 0;
  virtual void Write(uint64_t offset, int width, uint32_t value) = 0;
};

// Registers mapped into this process at |base| (|size| bytes). Does not own
// the mapping; |keepalive| (may be null) does and is held.
class MappedRegisters final : public RegisterIo {
 public:
  MappedRegisters(void* base, uint64_t size, std::shared_ptr<const void> keepalive)
      : base_(static_cast<volatile uint8_t*>(base)), size_(size), keepalive_(std::move(keepalive)) {}
  MappedRegisters(const MappedRegisters&) = delete;
  MappedRegisters& operator=(const MappedRegisters&) = delete;

  uint64_t size() const override { return size_; }
  uint32_t Read(uint64_t offset, int width) override;
  void Write(uint64_t offset, int width, uint32_t value) override;

 private:
  volatile uint8_t* const base_;
  const uint64_t size_;
  const std::shared_ptr<const void> keepalive_;
};

// True if [offset, offset + width) fits in |size| (overflow-safe).
inline bool FitsIn(uint64_t offset, uint64_t width, uint64_t size) {
  return width <= size && offset <= size - width;
}

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PCI_REGISTERS_H_
