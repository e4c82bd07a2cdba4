// File: transport_vsock/driver/pci/sysfs.h
//
// A PCI function seen through Linux sysfs (<root>/bus/pci/devices/<addr>):
// configuration space, BAR sizes, the bound driver, binding to another
// driver, and the UIO device that uio_pci_generic creates. The root is a
// parameter so tests run against a fake tree of plain files in a temp dir.
//
// Binding changes the machine: the buses call it only with an address the
// user named, and vrpc's tests do so only inside QEMU guests.
//
// The files' contents come from the kernel, except the config space, which
// comes from the device (untrusted: see virtio_pci_caps.h). Thread-compatible.
#ifndef VRPC_TRANSPORT_VSOCK_DRIVER_PCI_SYSFS_H_
#define VRPC_TRANSPORT_VSOCK_DRIVER_PCI_SYSFS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transport_vsock/driver/pci/virtio_pci_caps.h"

namespace vrpc {
namespace vsock {
namespace pci {

class PciSysfs {
 public:
  // |root| is sysfs ("/sys"); |address| the function, "DDDD:BB:DD.F".
  // kInvalidArgument for an address with '/' or ".." in it.
  static absl::StatusOr<PciSysfs> Open(std::string root, std::string address);

  const std::string& address() const { return address_; }
  // <root>/bus/pci/devices/<address>
  const std::string& dir() const { return dir_; }

  // The first 256 bytes of config space (the header and the capability
  // list); kDataLoss if the file is shorter.
  absl::StatusOr<std::vector<uint8_t>> ReadConfig() const;
  // BAR sizes from the "resource" file; I/O-port BARs read as 0 (they
  // cannot be mapped).
  absl::StatusOr<std::array<uint64_t, kNumBars>> BarSizes() const;
  // The bound driver's name, "" when none.
  absl::StatusOr<std::string> Driver() const;
  // Unbinds the current driver (if another) and binds |driver| through
  // driver_override (or, without it, new_id "<vendor> <device>").
  absl::Status Bind(absl::string_view driver, uint16_t vendor, uint16_t device) const;
  // "uioN" of the function's UIO device; waits up to |wait| for it to
  // appear. kNotFound otherwise.
  absl::StatusOr<std::string> UioName(absl::Duration wait) const;
  // The IOMMU group number (basename of the iommu_group link). kNotFound
  // without one.
  absl::StatusOr<int> IommuGroup() const;

 private:
  PciSysfs(std::string root, std::string address);

  std::string root_;
  std::string address_;
  std::string dir_;
};

// Whole-file helpers (sysfs attributes and their fakes).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);
absl::Status WriteSmallFile(const std::string& path, absl::string_view contents);

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DRIVER_PCI_SYSFS_H_
