#include "transport_vsock/driver/uio_bus.h"

#include <fcntl.h>
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

constexpr char kUioDriver[] = "uio_pci_generic";

// munmaps a BAR mapping when the last window over it goes.
struct BarMapping {
  BarMapping(void* a, size_t s) : addr(a), size(s) {}
  ~BarMapping() { ::munmap(addr, size); }
  void* addr;
  size_t size;
};

absl::Status NoSession() { return absl::FailedPreconditionError("no UIO session (Reset first)"); }

}  // namespace

struct UioBus::Session {
  std::unique_ptr<pci::PhysicalMemory> memory;
  std::vector<UniqueFd> irq;            // one eventfd per queue
  std::vector<uint32_t> max_sizes;      // per queue, as the device said
};

absl::StatusOr<std::unique_ptr<UioBus>> UioBus::Create(UioBusOptions options) {
  if (options.num_queues == 0 || options.num_queues > 64 || options.dma_bytes == 0) {
    return absl::InvalidArgumentError("bad UIO bus queue count or DMA size");
  }
  VRPC_ASSIGN_OR_RETURN(pci::PciSysfs sysfs,
                        pci::PciSysfs::Open(options.sysfs_root, options.pci_address));
  std::unique_ptr<UioBus> bus(new UioBus(std::move(options), std::move(sysfs)));
  VRPC_RETURN_IF_ERROR(bus->Open());
  return bus;
}

UioBus::UioBus(UioBusOptions options, pci::PciSysfs sysfs)
    : options_(std::move(options)), sysfs_(std::move(sysfs)) {}

UioBus::~UioBus() {
  if (device_ != nullptr) (void)device_->Reset();  // stop DMA before the pool goes
  session_.reset();
}

std::string UioBus::name() const { return absl::StrCat("uio:", options_.pci_address); }

absl::Status UioBus::Open() {
  VRPC_ASSIGN_OR_RETURN(const std::vector<uint8_t> config, sysfs_.ReadConfig());
  VRPC_ASSIGN_OR_RETURN(const auto ids, pci::PciIds(config));
  if (ids.first != pci::kVirtioVendorId || ids.second != pci::kVirtioVsockDeviceId) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.pci_address, " is ", absl::Hex(ids.first, absl::kZeroPad4), ":",
                     absl::Hex(ids.second, absl::kZeroPad4), ", not a virtio-vsock device (",
                     "1af4:1053)"));
  }
  VRPC_ASSIGN_OR_RETURN(const auto sizes, sysfs_.BarSizes());
  VRPC_ASSIGN_OR_RETURN(const pci::VirtioPciCaps caps, pci::ParseVirtioPciCaps(config, sizes));
  if (options_.bind) VRPC_RETURN_IF_ERROR(sysfs_.Bind(kUioDriver, ids.first, ids.second));
  VRPC_ASSIGN_OR_RETURN(const std::string uio, sysfs_.UioName(absl::Seconds(2)));
  uio_path_ = absl::StrCat(options_.dev_root, "/", uio);
  for (int i = 0; i < 200 && ::access(uio_path_.c_str(), F_OK) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));  // devtmpfs may lag the bind a little
  }
  uio_fd_.Reset(::open(uio_path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!uio_fd_.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", uio_path_));
  const std::string config_path = sysfs_.dir() + "/config";
  config_fd_.Reset(::open(config_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!config_fd_.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", config_path));
  VRPC_RETURN_IF_ERROR(MapBars(caps, sizes));
  std::array<pci::RegisterIo*, pci::kNumBars> windows{};
  for (int i = 0; i < pci::kNumBars; ++i) windows[i] = bars_[i].get();
  VRPC_ASSIGN_OR_RETURN(device_,
                        pci::VirtioPciDevice::Create(caps, windows, options_.reset_timeout));
  return absl::OkStatus();
}

absl::Status UioBus::MapBars(const pci::VirtioPciCaps& caps,
                             const std::array<uint64_t, pci::kNumBars>& sizes) {
  uint8_t wanted[] = {caps.common.bar, caps.notify.bar, caps.isr.bar,
                      caps.has_device_cfg ? caps.device.bar : caps.common.bar};
  for (uint8_t bar : wanted) {
    if (bars_[bar] != nullptr) continue;
    const std::string path = absl::StrCat(sysfs_.dir(), "/resource", bar);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
    const size_t size = static_cast<size_t>(sizes[bar]);
    void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (addr == MAP_FAILED) return absl::ErrnoToStatus(errno, absl::StrCat("mmap ", path));
    bars_[bar] = std::make_unique<pci::MappedRegisters>(addr, size,
                                                        std::make_shared<BarMapping>(addr, size));
  }
  return absl::OkStatus();
}

absl::Status UioBus::WriteCommand(bool intx_enabled) {
  uint16_t command = 0;
  if (::pread(config_fd_.get(), &command, sizeof(command), pci::kPciCommand) != sizeof(command)) {
    return absl::ErrnoToStatus(errno, "read the PCI command register");
  }
  command |= pci::kPciCommandMemory | pci::kPciCommandMaster;
  if (intx_enabled) {
    command &= static_cast<uint16_t>(~pci::kPciCommandIntxDisable);
  } else {
    command |= pci::kPciCommandIntxDisable;
  }
  if (::pwrite(config_fd_.get(), &command, sizeof(command), pci::kPciCommand) != sizeof(command)) {
    return absl::ErrnoToStatus(errno, "write the PCI command register");
  }
  return absl::OkStatus();
}

absl::Status UioBus::Check() const {
  return session_ != nullptr ? absl::OkStatus() : NoSession();
}

absl::Status UioBus::Reset() {
  // The device stops before the old pool's hugepages can go back to the
  // kernel (and maybe into the next pool).
  absl::Status reset = device_->Reset();
  if (!reset.ok() && session_ != nullptr) {
    quarantined_.push_back(std::move(session_));  // it may still be written to
  }
  session_.reset();
  VRPC_RETURN_IF_ERROR(reset);
  VRPC_RETURN_IF_ERROR(WriteCommand(/*intx_enabled=*/true));
  (void)device_->ReadIsr();  // a stale interrupt of the last session
  uint32_t count = 0;
  while (::read(uio_fd_.get(), &count, sizeof(count)) == sizeof(count)) {
  }
  auto s = std::make_unique<Session>();
  const uint32_t queues = device_->num_queues();
  if (queues < options_.num_queues || queues == 0xffff) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the device has ", queues, " queues; virtio-vsock needs ", options_.num_queues));
  }
  for (uint32_t q = 0; q < options_.num_queues; ++q) {
    s->max_sizes.push_back(std::min<uint32_t>(device_->QueueMaxSize(q), options_.max_queue_size));
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, "eventfd");
    s->irq.push_back(std::move(fd));
  }
  pci::PhysicalMemoryOptions memory;
  memory.bytes = options_.dma_bytes;
  memory.page_size = options_.dma_page_size;
  memory.virt_to_phys = options_.virt_to_phys;
  VRPC_ASSIGN_OR_RETURN(s->memory, pci::PhysicalMemory::Create(std::move(memory)));
  session_ = std::move(s);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> UioBus::NegotiateFeatures(uint64_t wanted) {
  VRPC_RETURN_IF_ERROR(Check());
  return device_->NegotiateFeatures(wanted);
}

absl::Status UioBus::ReadConfig(uint32_t offset, absl::Span<uint8_t> out) {
  VRPC_RETURN_IF_ERROR(Check());
  return device_->ReadConfig(offset, out);
}

absl::StatusOr<DmaRegion> UioBus::AllocateDma(size_t size) {
  VRPC_RETURN_IF_ERROR(Check());
  return session_->memory->Allocate(size);
}

virtqueue::GuestMemory UioBus::DmaMemory() const {
  return session_ != nullptr ? session_->memory->memory() : virtqueue::GuestMemory();
}

uint32_t UioBus::MaxQueueSize(uint32_t index) const {
  if (session_ == nullptr || index >= session_->max_sizes.size()) return 0;
  return session_->max_sizes[index];
}

absl::Status UioBus::SetupQueue(uint32_t index, const QueueLayout& layout) {
  VRPC_RETURN_IF_ERROR(Check());
  if (index >= options_.num_queues || layout.size > MaxQueueSize(index)) {
    return absl::InvalidArgumentError(absl::StrCat("queue ", index, " of size ", layout.size));
  }
  return device_->SetupQueue(index, layout, pci::kMsixNoVector);
}

absl::Status UioBus::Start() {
  VRPC_RETURN_IF_ERROR(Check());
  return device_->Start();
}

void UioBus::Notify(uint32_t index) {
  if (session_ != nullptr) device_->Notify(index);
}

int UioBus::InterruptFd(uint32_t index) const {
  if (session_ == nullptr || index >= session_->irq.size()) return -1;
  return session_->irq[index].get();
}

std::vector<int> UioBus::control_fds() const {
  if (session_ == nullptr) return {};
  return {uio_fd_.get()};
}

absl::Status UioBus::HandleControl() {
  VRPC_RETURN_IF_ERROR(Check());
  uint32_t count = 0;
  const ssize_t n = ::read(uio_fd_.get(), &count, sizeof(count));
  if (n < 0 && errno == EAGAIN) return absl::OkStatus();  // nothing new
  if (n != sizeof(count)) {
    return absl::UnavailableError(absl::StrCat("read ", uio_path_, ": the UIO device is gone"));
  }
  // The ISR read acks the device (and lowers INTx); then unmask the line.
  const uint8_t isr = device_->ReadIsr();
  VRPC_RETURN_IF_ERROR(WriteCommand(/*intx_enabled=*/true));
  const uint8_t status = device_->status();
  if (isr == 0xff && status == 0xff) {
    return absl::UnavailableError("the virtio PCI function reads as all ones (gone)");
  }
  if ((status & pci::kStatusNeedsReset) != 0) {
    return absl::InternalError("the device set DEVICE_NEEDS_RESET");
  }
  if ((isr & pci::kIsrQueue) != 0) {
    const uint64_t one = 1;
    for (const UniqueFd& fd : session_->irq) (void)!::write(fd.get(), &one, sizeof(one));
  }
  return absl::OkStatus();
}

}  // namespace vsock
}  // namespace vrpc
