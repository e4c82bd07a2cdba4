#include "transport_vsock/driver/vfio_bus.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace vrpc {
namespace vsock {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kConfigBytes = 256;
constexpr char kVfioDriver[] = "vfio-pci";

// A BAR region VFIO does not let us mmap: each access is a pread/pwrite on
// the device fd. A failed read returns all ones, as a vanished PCI function
// does.
class VfioRegionRegisters final : public pci::RegisterIo {
 public:
  VfioRegionRegisters(VfioOps& ops, int fd, const VfioRegionInfo& info)
      : ops_(ops), fd_(fd), info_(info) {}
  uint64_t size() const override { return info_.size; }
  uint32_t Read(uint64_t offset, int width) override {
    uint32_t v = 0;
    if (!ops_.Pread(fd_, &v, static_cast<size_t>(width), info_.offset + offset).ok()) {
      return 0xffffffffu >> (32 - 8 * width);
    }
    return v;
  }
  void Write(uint64_t offset, int width, uint32_t value) override {
    (void)ops_.Pwrite(fd_, &value, static_cast<size_t>(width), info_.offset + offset);
  }

 private:
  VfioOps& ops_;
  const int fd_;
  const VfioRegionInfo info_;
};

// munmaps a BAR mapping through the ops.
struct RegionMapping {
  RegionMapping(VfioOps& o, void* a, uint64_t s) : ops(o), addr(a), size(s) {}
  ~RegionMapping() { ops.Munmap(addr, size); }
  VfioOps& ops;
  void* addr;
  uint64_t size;
};

absl::StatusOr<UniqueFd> EventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "eventfd");
  return fd;
}

}  // namespace

// One session's DMA memory: a shared memfd mapping, mapped into the IOMMU
// until the session ends (the host mapping lives on while held).
struct VfioBus::Session {
  struct Memory {
    ~Memory() { ::munmap(host, size); }
    uint8_t* host = nullptr;
    size_t size = 0;
  };
  Session(VfioOps& o, int c) : ops(o), container(c) {}
  ~Session() {
    if (mapped) (void)ops.UnmapDma(container, iova, memory->size);
  }
  VfioOps& ops;
  const int container;
  std::shared_ptr<Memory> memory = std::make_shared<Memory>();
  uint64_t iova = 0;
  bool mapped = false;
  size_t allocated = 0;
  virtqueue::GuestMemory guest;
  std::vector<uint32_t> max_sizes;
};

absl::StatusOr<std::unique_ptr<VfioBus>> VfioBus::Create(VfioBusOptions options,
                                                         std::unique_ptr<VfioOps> ops) {
  if (options.num_queues == 0 || options.num_queues > 64 || options.dma_bytes == 0 ||
      options.iova_base % kPage != 0 || options.iova_base + options.dma_bytes < options.iova_base) {
    return absl::InvalidArgumentError("bad VFIO bus queue count, DMA size or IOVA base");
  }
  options.dma_bytes = (options.dma_bytes + kPage - 1) / kPage * kPage;
  if (ops == nullptr) ops = MakeLinuxVfioOps();
  std::unique_ptr<VfioBus> bus(new VfioBus(std::move(options), std::move(ops)));
  VRPC_RETURN_IF_ERROR(bus->Open());
  return bus;
}

VfioBus::VfioBus(VfioBusOptions options, std::unique_ptr<VfioOps> ops)
    : options_(std::move(options)), ops_(std::move(ops)) {}

VfioBus::~VfioBus() {
  if (device_ != nullptr) (void)device_->Reset();  // no DMA, no interrupts
  session_.reset();
  if (device_fd_.valid() && config_irq_.valid()) (void)ops_->SetMsix(device_fd_.get(), {});
}

std::string VfioBus::name() const { return absl::StrCat("vfio:", options_.pci_address); }

absl::Status VfioBus::Open() {
  VRPC_ASSIGN_OR_RETURN(const pci::PciSysfs sysfs,
                        pci::PciSysfs::Open(options_.sysfs_root, options_.pci_address));
  if (options_.bind) {
    // Only ever rebind a virtio-vsock function.
    VRPC_ASSIGN_OR_RETURN(const std::vector<uint8_t> sysfs_config, sysfs.ReadConfig());
    VRPC_ASSIGN_OR_RETURN(const auto sysfs_ids, pci::PciIds(sysfs_config));
    if (sysfs_ids.first != pci::kVirtioVendorId ||
        sysfs_ids.second != pci::kVirtioVsockDeviceId) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.pci_address, " is not a virtio-vsock device (1af4:1053)"));
    }
    VRPC_RETURN_IF_ERROR(
        sysfs.Bind(kVfioDriver, pci::kVirtioVendorId, pci::kVirtioVsockDeviceId));
  }
  VRPC_ASSIGN_OR_RETURN(const int group, sysfs.IommuGroup());
  VRPC_ASSIGN_OR_RETURN(container_, ops_->OpenContainer());
  VRPC_ASSIGN_OR_RETURN(group_, ops_->OpenGroup(group));
  VRPC_RETURN_IF_ERROR(ops_->AttachGroup(group_.get(), container_.get()));
  VRPC_ASSIGN_OR_RETURN(device_fd_, ops_->DeviceFd(group_.get(), options_.pci_address));
  VRPC_ASSIGN_OR_RETURN(const VfioRegionInfo config_region,
                        ops_->RegionInfo(device_fd_.get(), kVfioPciConfigRegion));
  if (config_region.size < kConfigBytes) return absl::DataLossError("VFIO config region too small");
  config_offset_ = config_region.offset;
  std::vector<uint8_t> config(kConfigBytes);
  VRPC_RETURN_IF_ERROR(ops_->Pread(device_fd_.get(), config.data(), config.size(), config_offset_));
  VRPC_ASSIGN_OR_RETURN(const auto ids, pci::PciIds(config));
  if (ids.first != pci::kVirtioVendorId || ids.second != pci::kVirtioVsockDeviceId) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.pci_address, " is not a virtio-vsock device (1af4:1053)"));
  }
  std::array<uint64_t, pci::kNumBars> sizes{};
  for (uint32_t i = 0; i < pci::kNumBars; ++i) {
    VRPC_ASSIGN_OR_RETURN(regions_[i], ops_->RegionInfo(device_fd_.get(), i));
    if (regions_[i].readable && regions_[i].writable) sizes[i] = regions_[i].size;
  }
  VRPC_ASSIGN_OR_RETURN(const pci::VirtioPciCaps caps, pci::ParseVirtioPciCaps(config, sizes));
  VRPC_RETURN_IF_ERROR(MapBars(caps));
  std::array<pci::RegisterIo*, pci::kNumBars> windows{};
  for (int i = 0; i < pci::kNumBars; ++i) windows[i] = bars_[i].get();
  VRPC_ASSIGN_OR_RETURN(device_,
                        pci::VirtioPciDevice::Create(caps, windows, options_.reset_timeout));
  if (!caps.has_msix) return absl::FailedPreconditionError("the function has no MSI-X");
  return SetupInterrupts();
}

absl::Status VfioBus::MapBars(const pci::VirtioPciCaps& caps) {
  const uint8_t wanted[] = {caps.common.bar, caps.notify.bar, caps.isr.bar,
                            caps.has_device_cfg ? caps.device.bar : caps.common.bar};
  for (uint8_t bar : wanted) {
    if (bars_[bar] != nullptr) continue;
    const VfioRegionInfo& r = regions_[bar];
    if (r.mmappable) {
      absl::StatusOr<void*> addr = ops_->Mmap(device_fd_.get(), r.offset, r.size);
      if (addr.ok()) {
        bars_[bar] = std::make_unique<pci::MappedRegisters>(
            *addr, r.size, std::make_shared<RegionMapping>(*ops_, *addr, r.size));
        continue;
      }
    }
    bars_[bar] = std::make_unique<VfioRegionRegisters>(*ops_, device_fd_.get(), r);
  }
  return absl::OkStatus();
}

absl::Status VfioBus::SetupInterrupts() {
  VRPC_ASSIGN_OR_RETURN(const uint32_t vectors,
                        ops_->IrqCount(device_fd_.get(), kVfioPciMsixIrq));
  if (vectors < options_.num_queues + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the function has ", vectors, " MSI-X vectors; need ", options_.num_queues + 1));
  }
  VRPC_ASSIGN_OR_RETURN(config_irq_, EventFd());
  std::vector<int> fds = {config_irq_.get()};
  for (uint32_t q = 0; q < options_.num_queues; ++q) {
    VRPC_ASSIGN_OR_RETURN(UniqueFd fd, EventFd());
    fds.push_back(fd.get());
    queue_irqs_.push_back(std::move(fd));
  }
  return ops_->SetMsix(device_fd_.get(), fds);
}

absl::Status VfioBus::EnableBusMaster() {
  uint16_t command = 0;
  VRPC_RETURN_IF_ERROR(ops_->Pread(device_fd_.get(), &command, sizeof(command),
                                   config_offset_ + pci::kPciCommand));
  command |= pci::kPciCommandMemory | pci::kPciCommandMaster;
  return ops_->Pwrite(device_fd_.get(), &command, sizeof(command),
                      config_offset_ + pci::kPciCommand);
}

absl::Status VfioBus::Check() const {
  return session_ != nullptr ? absl::OkStatus()
                             : absl::FailedPreconditionError("no VFIO session (Reset first)");
}

absl::Status VfioBus::Reset() {
  absl::Status reset = device_->Reset();  // before the IOMMU mapping goes
  session_.reset();
  VRPC_RETURN_IF_ERROR(reset);
  VRPC_RETURN_IF_ERROR(EnableBusMaster());
  const uint32_t queues = device_->num_queues();
  if (queues < options_.num_queues || queues == 0xffff) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the device has ", queues, " queues; virtio-vsock needs ", options_.num_queues));
  }
  auto s = std::make_unique<Session>(*ops_, container_.get());
  for (uint32_t q = 0; q < options_.num_queues; ++q) {
    s->max_sizes.push_back(std::min<uint32_t>(device_->QueueMaxSize(q), options_.max_queue_size));
  }
  UniqueFd memfd(::memfd_create("vrpc-vfio-dma", MFD_CLOEXEC));
  if (!memfd.valid()) return absl::ErrnoToStatus(errno, "memfd_create");
  if (::ftruncate(memfd.get(), static_cast<off_t>(options_.dma_bytes)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate the DMA memfd");
  }
  void* host = ::mmap(nullptr, options_.dma_bytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, memfd.get(), 0);
  if (host == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap DMA memory");
  s->memory->host = static_cast<uint8_t*>(host);
  s->memory->size = options_.dma_bytes;
  s->iova = options_.iova_base;
  VRPC_RETURN_IF_ERROR(ops_->MapDma(container_.get(), host, s->iova, options_.dma_bytes));
  s->mapped = true;
  VRPC_ASSIGN_OR_RETURN(s->guest, virtqueue::GuestMemory::Create(
                                      {{s->iova, options_.dma_bytes, s->memory->host}}, s->memory));
  VRPC_RETURN_IF_ERROR(device_->SetConfigVector(0));
  session_ = std::move(s);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> VfioBus::NegotiateFeatures(uint64_t wanted) {
  VRPC_RETURN_IF_ERROR(Check());
  return device_->NegotiateFeatures(wanted);
}

absl::Status VfioBus::ReadConfig(uint32_t offset, absl::Span<uint8_t> out) {
  VRPC_RETURN_IF_ERROR(Check());
  return device_->ReadConfig(offset, out);
}

absl::StatusOr<DmaRegion> VfioBus::AllocateDma(size_t size) {
  VRPC_RETURN_IF_ERROR(Check());
  Session& s = *session_;
  const size_t rounded = (size + kPage - 1) / kPage * kPage;
  if (size == 0 || rounded > s.memory->size - s.allocated) {
    return absl::ResourceExhaustedError(absl::StrCat("VFIO DMA memory: ", size, " bytes wanted, ",
                                                     s.memory->size - s.allocated, " left"));
  }
  DmaRegion region;
  region.host = s.memory->host + s.allocated;
  region.device_addr = s.iova + s.allocated;
  region.size = rounded;
  region.keepalive = s.memory;
  s.allocated += rounded;
  return region;
}

virtqueue::GuestMemory VfioBus::DmaMemory() const {
  return session_ != nullptr ? session_->guest : virtqueue::GuestMemory();
}

uint32_t VfioBus::MaxQueueSize(uint32_t index) const {
  if (session_ == nullptr || index >= session_->max_sizes.size()) return 0;
  return session_->max_sizes[index];
}

absl::Status VfioBus::SetupQueue(uint32_t index, const QueueLayout& layout) {
  VRPC_RETURN_IF_ERROR(Check());
  if (index >= options_.num_queues || layout.size > MaxQueueSize(index)) {
    return absl::InvalidArgumentError(absl::StrCat("queue ", index, " of size ", layout.size));
  }
  return device_->SetupQueue(index, layout, static_cast<uint16_t>(index + 1));
}

absl::Status VfioBus::Start() {
  VRPC_RETURN_IF_ERROR(Check());
  return device_->Start();
}

void VfioBus::Notify(uint32_t index) {
  if (session_ != nullptr) device_->Notify(index);
}

int VfioBus::InterruptFd(uint32_t index) const {
  if (session_ == nullptr || index >= queue_irqs_.size()) return -1;
  return queue_irqs_[index].get();
}

std::vector<int> VfioBus::control_fds() const {
  if (session_ == nullptr) return {};
  return {config_irq_.get()};
}

absl::Status VfioBus::HandleControl() {
  VRPC_RETURN_IF_ERROR(Check());
  uint64_t count = 0;
  if (::read(config_irq_.get(), &count, sizeof(count)) != sizeof(count)) return absl::OkStatus();
  const uint8_t status = device_->status();
  if (status == 0xff) return absl::UnavailableError("the virtio PCI function reads as all ones");
  if ((status & pci::kStatusNeedsReset) != 0) {
    return absl::InternalError("the device set DEVICE_NEEDS_RESET");
  }
  return absl::OkStatus();
}

}  // namespace vsock
}  // namespace vrpc
