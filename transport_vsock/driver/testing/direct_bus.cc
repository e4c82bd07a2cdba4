#include "transport_vsock/driver/testing/direct_bus.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/base/logging.h"

namespace vrpc {
namespace vsock {
namespace testing {
namespace {

UniqueFd EventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  VRPC_CHECK(fd.valid()) << "eventfd: errno " << errno;
  return fd;
}

vhost_user::SharedFd Shared(UniqueFd fd) {
  return std::make_shared<const UniqueFd>(std::move(fd));
}

struct Mapping {
  uint8_t* addr;
  size_t size;
  ~Mapping() { ::munmap(addr, size); }
};

}  // namespace

DirectBus::DirectBus(vhost_user::DeviceHooks* device, size_t dma_bytes)
    : device_(device), dma_bytes_(dma_bytes), hangup_(EventFd()) {}

DirectBus::~DirectBus() { EndSession(); }

void DirectBus::EndSession() {
  if (started_) {
    for (uint32_t i = 0; i < layouts_.size(); ++i) (void)device_->OnRingStopped(i);
  }
  if (sessions_ > 0) device_->OnReset();
  started_ = false;
  layouts_.clear();
  kick_.clear();
  call_.clear();
  err_.reset();
  table_.reset();
  memory_ = virtqueue::GuestMemory();
  mapping_.reset();
  memfd_.Reset();
  uint64_t drain;
  (void)!::read(hangup_.get(), &drain, sizeof(drain));
}

absl::Status DirectBus::Reset() {
  EndSession();
  if (!reachable_) return absl::UnavailableError("direct device unreachable");
  memfd_.Reset(::memfd_create("vrpc-direct-bus", MFD_CLOEXEC));
  VRPC_CHECK(memfd_.valid() && ::ftruncate(memfd_.get(), static_cast<off_t>(dma_bytes_)) == 0);
  void* map = ::mmap(nullptr, dma_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_.get(), 0);
  VRPC_CHECK(map != MAP_FAILED);
  host_ = static_cast<uint8_t*>(map);
  mapping_ = std::shared_ptr<const Mapping>(new Mapping{host_, dma_bytes_});
  memory_ = *virtqueue::GuestMemory::Create({{kDmaBase, dma_bytes_, host_}}, mapping_);
  vhost_user::MemoryRegionDesc region;
  region.guest_addr = kDmaBase;
  region.size = dma_bytes_;
  region.user_addr = reinterpret_cast<uintptr_t>(host_);
  std::vector<UniqueFd> fds;
  fds.emplace_back(::fcntl(memfd_.get(), F_DUPFD_CLOEXEC, 0));
  auto table = vhost_user::MemoryTable::Map({&region, 1}, std::move(fds), {});
  VRPC_CHECK(table.ok()) << table.status();
  table_ = *std::move(table);
  device_->OnMemoryTableChanged(table_);
  err_ = Shared(EventFd());
  allocated_ = 0;
  acked_ = 0;
  ++sessions_;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DirectBus::NegotiateFeatures(uint64_t wanted) {
  const uint64_t accepted = device_->Features() & wanted;
  if ((accepted & kVirtioFeatureVersion1) == 0) {
    return absl::FailedPreconditionError("no VERSION_1");
  }
  if (absl::Status s = device_->OnFeaturesAcked(accepted); !s.ok()) return s;
  acked_ = accepted;
  return accepted;
}

absl::Status DirectBus::ReadConfig(uint32_t offset, absl::Span<uint8_t> out) {
  if (uint64_t{offset} + out.size() > device_->ConfigSize()) {
    return absl::OutOfRangeError("config read outside the config space");
  }
  auto bytes = device_->ReadConfig(offset, static_cast<uint32_t>(out.size()));
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() != out.size()) return absl::InternalError("short config read");
  std::memcpy(out.data(), bytes->data(), out.size());
  return absl::OkStatus();
}

absl::StatusOr<DmaRegion> DirectBus::AllocateDma(size_t size) {
  const size_t rounded = (size + 4095) / 4096 * 4096;
  if (size == 0 || mapping_ == nullptr || rounded > dma_bytes_ - allocated_) {
    return absl::ResourceExhaustedError("direct bus DMA memory exhausted");
  }
  DmaRegion r{host_ + allocated_, kDmaBase + allocated_, rounded, mapping_};
  allocated_ += rounded;
  return r;
}

absl::Status DirectBus::SetupQueue(uint32_t index, const QueueLayout& layout) {
  if (index != layouts_.size() || index >= device_->NumQueues()) {
    return absl::InvalidArgumentError("queues must be set up in order");
  }
  layouts_.push_back(layout);
  kick_.push_back(Shared(EventFd()));
  call_.push_back(Shared(EventFd()));
  return absl::OkStatus();
}

absl::Status DirectBus::Start() {
  for (uint32_t i = 0; i < layouts_.size(); ++i) {
    vhost_user::RingConfig ring;
    ring.index = i;
    ring.num = layouts_[i].size;
    ring.desc_guest_addr = layouts_[i].desc_addr;
    ring.avail_guest_addr = layouts_[i].avail_addr;
    ring.used_guest_addr = layouts_[i].used_addr;
    ring.kick = kick_[i];
    ring.call = call_[i];
    ring.err = err_;
    ring.enabled = true;
    ring.event_idx = (acked_ & kVirtioFeatureEventIdx) != 0;
    device_->OnRingStarted(ring, table_);
  }
  started_ = true;
  return absl::OkStatus();
}

void DirectBus::Notify(uint32_t index) {
  if (index >= kick_.size()) return;
  if (index < 3) ++notifies_[index];
  const uint64_t one = 1;
  (void)!::write(kick_[index]->get(), &one, sizeof(one));
}

int DirectBus::InterruptFd(uint32_t index) const {
  return index < call_.size() ? call_[index]->get() : -1;
}

std::vector<int> DirectBus::control_fds() const {
  if (err_ == nullptr) return {hangup_.get()};
  return {hangup_.get(), err_->get()};
}

absl::Status DirectBus::HandleControl() {
  uint64_t count = 0;
  if (::read(hangup_.get(), &count, sizeof(count)) == sizeof(count)) {
    return absl::UnavailableError("direct device hung up");
  }
  if (err_ != nullptr && ::read(err_->get(), &count, sizeof(count)) == sizeof(count)) {
    return absl::InternalError("direct device signalled an error");
  }
  return absl::OkStatus();
}

void DirectBus::HangUp() {
  const uint64_t one = 1;
  (void)!::write(hangup_.get(), &one, sizeof(one));
}

}  // namespace testing
}  // namespace vsock
}  // namespace vrpc
