#include "transport_vsock/driver/pci/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/base/unique_fd.h"

namespace vrpc {
namespace vsock {
namespace pci {
namespace {

constexpr size_t kConfigBytes = 256;
constexpr uint64_t kResourceMem = 0x200;  // IORESOURCE_MEM

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("readlink ", path));
  return std::string(buf, static_cast<size_t>(n));
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  std::string out;
  char buf[4096];
  while (out.size() < (1 << 20)) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status WriteSmallFile(const std::string& path, absl::string_view contents) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  const ssize_t n = ::write(fd.get(), contents.data(), contents.size());
  if (n != static_cast<ssize_t>(contents.size())) {
    return absl::ErrnoToStatus(n < 0 ? errno : EIO, absl::StrCat("write \"", contents, "\" to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<PciSysfs> PciSysfs::Open(std::string root, std::string address) {
  if (address.empty() || absl::StrContains(address, '/') || absl::StrContains(address, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("PCI address \"", address, "\""));
  }
  return PciSysfs(std::move(root), std::move(address));
}

PciSysfs::PciSysfs(std::string root, std::string address)
    : root_(std::move(root)),
      address_(std::move(address)),
      dir_(absl::StrCat(root_, "/bus/pci/devices/", address_)) {}

absl::StatusOr<std::vector<uint8_t>> PciSysfs::ReadConfig() const {
  const std::string path = dir_ + "/config";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  std::vector<uint8_t> config(kConfigBytes);
  const ssize_t n = ::pread(fd.get(), config.data(), config.size(), 0);
  if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
  if (static_cast<size_t>(n) < kConfigBytes) {
    return absl::DataLossError(absl::StrCat(path, ": ", n, " bytes of config space (root?)"));
  }
  return config;
}

absl::StatusOr<std::array<uint64_t, kNumBars>> PciSysfs::BarSizes() const {
  absl::StatusOr<std::string> text = ReadSmallFile(dir_ + "/resource");
  if (!text.ok()) return text.status();
  std::array<uint64_t, kNumBars> sizes{};
  int bar = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    if (bar == kNumBars) break;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t start = 0, end = 0, flags = 0;
    if (f.size() < 3 || !absl::SimpleHexAtoi(f[0], &start) || !absl::SimpleHexAtoi(f[1], &end) ||
        !absl::SimpleHexAtoi(f[2], &flags)) {
      return absl::DataLossError(absl::StrCat(dir_, "/resource: bad line \"", line, "\""));
    }
    if ((flags & kResourceMem) != 0 && end > start) sizes[bar] = end - start + 1;
    ++bar;
  }
  return sizes;
}

absl::StatusOr<std::string> PciSysfs::Driver() const {
  const std::string link = dir_ + "/driver";
  if (!Exists(link)) return std::string();
  absl::StatusOr<std::string> target = ReadLink(link);
  if (!target.ok()) return target.status();
  return Basename(*target);
}

absl::Status PciSysfs::Bind(absl::string_view driver, uint16_t vendor, uint16_t device) const {
  absl::StatusOr<std::string> current = Driver();
  if (!current.ok()) return current.status();
  if (*current == driver) return absl::OkStatus();
  const std::string drivers = root_ + "/bus/pci/drivers/" + std::string(driver);
  if (!Exists(drivers)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no PCI driver ", driver, " (", drivers, "): load its module"));
  }
  if (!current->empty()) {
    if (absl::Status s = WriteSmallFile(dir_ + "/driver/unbind", address_); !s.ok()) return s;
  }
  if (Exists(dir_ + "/driver_override")) {
    if (absl::Status s = WriteSmallFile(dir_ + "/driver_override", driver); !s.ok()) return s;
    return WriteSmallFile(drivers + "/bind", address_);
  }
  // Without driver_override: new ids make the driver probe unbound devices.
  absl::Status s = WriteSmallFile(drivers + "/new_id", absl::StrFormat("%04x %04x", vendor, device));
  if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  absl::StatusOr<std::string> now = Driver();
  if (now.ok() && *now == driver) return absl::OkStatus();
  return WriteSmallFile(drivers + "/bind", address_);
}

absl::StatusOr<std::string> PciSysfs::UioName(absl::Duration wait) const {
  const absl::Time deadline = absl::Now() + wait;
  const std::string dir = dir_ + "/uio";
  while (true) {
    if (DIR* d = ::opendir(dir.c_str()); d != nullptr) {
      std::string found;
      while (dirent* e = ::readdir(d)) {
        if (absl::StartsWith(e->d_name, "uio")) found = e->d_name;
      }
      ::closedir(d);
      if (!found.empty()) return found;
    }
    if (absl::Now() >= deadline) {
      return absl::NotFoundError(absl::StrCat(dir, ": no UIO device (is ", address_,
                                              " bound to uio_pci_generic?)"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<int> PciSysfs::IommuGroup() const {
  absl::StatusOr<std::string> target = ReadLink(dir_ + "/iommu_group");
  if (!target.ok()) {
    return absl::NotFoundError(absl::StrCat(address_, " has no IOMMU group (no IOMMU, or "
                                                      "vfio's no-IOMMU mode is off)"));
  }
  int group = 0;
  if (!absl::SimpleAtoi(Basename(*target), &group) || group < 0) {
    return absl::DataLossError(absl::StrCat("IOMMU group link ", *target));
  }
  return group;
}

}  // namespace pci
}  // namespace vsock
}  // namespace vrpc
