#include "transport_vsock/driver/virtio_user_bus.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "transport_vsock/vhost_user/message.h"

namespace vrpc {
namespace vsock {
namespace {

constexpr size_t kPage = 4096;
// What the frontend acks of the backend's protocol features.
constexpr uint64_t kWantedProtocol =
    vhost_user::kProtocolMq | vhost_user::kProtocolReplyAck | vhost_user::kProtocolConfig;

// One shared mapping of the session's memfd; munmap when the last user goes.
class Mapping {
 public:
  Mapping(uint8_t* addr, size_t size) : addr_(addr), size_(size) {}
  ~Mapping() { ::munmap(addr_, size_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint8_t* addr() const { return addr_; }

 private:
  uint8_t* addr_;
  size_t size_;
};

absl::StatusOr<UniqueFd> MakeEventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "eventfd");
  return fd;
}

absl::Status NoSession() { return absl::FailedPreconditionError("no virtio-user session"); }

}  // namespace

struct VirtioUserBus::Session {
  std::unique_ptr<vhost_user::Frontend> frontend;
  uint64_t offered = 0;
  uint64_t protocol = 0;  // acked protocol features
  uint64_t acked = 0;     // acked virtio features (with bit 30 if offered)
  UniqueFd memfd;
  std::shared_ptr<const Mapping> mapping;
  virtqueue::GuestMemory memory;
  size_t allocated = 0;
  bool mem_table_sent = false;
  std::vector<UniqueFd> kick, call;
  UniqueFd err;
  std::vector<uint32_t> queues;  // set up, in order
};

absl::StatusOr<std::unique_ptr<VirtioUserBus>> VirtioUserBus::Create(
    VirtioUserBusOptions options) {
  if (options.socket_path.empty() ||
      options.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("vhost-user socket path \"", options.socket_path, "\" is empty or too long"));
  }
  if (options.dma_bytes < kPage || options.num_queues < 2 ||
      options.num_queues > vhost_user::kMaxQueues) {
    return absl::InvalidArgumentError("bad virtio-user DMA size or queue count");
  }
  options.dma_bytes = (options.dma_bytes + kPage - 1) / kPage * kPage;
  return std::unique_ptr<VirtioUserBus>(new VirtioUserBus(std::move(options)));
}

VirtioUserBus::VirtioUserBus(VirtioUserBusOptions options) : options_(std::move(options)) {}
VirtioUserBus::~VirtioUserBus() = default;

std::string VirtioUserBus::name() const {
  return absl::StrCat("virtio-user:", options_.socket_path);
}

uint64_t VirtioUserBus::offered_features() const {
  return session_ != nullptr ? session_->offered : 0;
}

uint32_t VirtioUserBus::backend_queues() const {
  return options_.event_queue_to_backend ? options_.num_queues : options_.num_queues - 1;
}

absl::Status VirtioUserBus::Check() const {
  return session_ != nullptr ? absl::OkStatus() : NoSession();
}

absl::StatusOr<std::unique_ptr<VirtioUserBus::Session>> VirtioUserBus::Connect() const {
  // Non-blocking: a backend whose accept queue is full (EAGAIN) must not
  // stall the caller; it is "unavailable, retry later" like a missing one.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options_.socket_path.data(), options_.socket_path.size());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect ", options_.socket_path, ": ", std::strerror(errno)));
  }
  auto s = std::make_unique<Session>();
  s->frontend = std::make_unique<vhost_user::Frontend>(
      std::move(fd), vhost_user::FrontendOptions{options_.io_timeout});
  // The session's DMA memory: a fresh memfd, mapped shared.
  s->memfd.Reset(::memfd_create("vrpc-virtio-user-dma", MFD_CLOEXEC));
  if (!s->memfd.valid()) return absl::ErrnoToStatus(errno, "memfd_create");
  if (::ftruncate(s->memfd.get(), static_cast<off_t>(options_.dma_bytes)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate");
  }
  void* map = ::mmap(nullptr, options_.dma_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                     s->memfd.get(), 0);
  if (map == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  auto mapping = std::make_shared<const Mapping>(static_cast<uint8_t*>(map), options_.dma_bytes);
  VRPC_ASSIGN_OR_RETURN(s->memory, virtqueue::GuestMemory::Create(
                                       {{kDmaBase, options_.dma_bytes, mapping->addr()}}, mapping));
  s->mapping = std::move(mapping);
  VRPC_ASSIGN_OR_RETURN(s->err, MakeEventFd());
  return s;
}

absl::Status VirtioUserBus::Handshake(Session& s) const {
  vhost_user::Frontend& f = *s.frontend;
  VRPC_ASSIGN_OR_RETURN(s.offered, f.GetFeatures());
  if ((s.offered & vhost_user::kFeatureProtocolFeatures) != 0) {
    VRPC_ASSIGN_OR_RETURN(const uint64_t offered_protocol, f.GetProtocolFeatures());
    s.protocol = offered_protocol & kWantedProtocol;
    VRPC_RETURN_IF_ERROR(f.SetProtocolFeatures(s.protocol));
    if ((s.protocol & vhost_user::kProtocolMq) != 0) {
      VRPC_ASSIGN_OR_RETURN(const uint64_t queues, f.GetQueueNum());
      if (queues < backend_queues()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the backend has ", queues, " queues; virtio-vsock needs ", backend_queues()));
      }
    }
  }
  return f.SetOwner();
}

absl::Status VirtioUserBus::Reset() {
  session_.reset();  // hangs up: the backend resets the device
  VRPC_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Connect());
  VRPC_RETURN_IF_ERROR(Handshake(*s));
  session_ = std::move(s);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> VirtioUserBus::NegotiateFeatures(uint64_t wanted) {
  VRPC_RETURN_IF_ERROR(Check());
  Session& s = *session_;
  const uint64_t accepted = s.offered & wanted & ~vhost_user::kFeatureProtocolFeatures;
  if ((accepted & kVirtioFeatureVersion1) == 0) {
    return absl::FailedPreconditionError("the device does not offer VIRTIO_F_VERSION_1");
  }
  s.acked = accepted | (s.offered & vhost_user::kFeatureProtocolFeatures);
  VRPC_RETURN_IF_ERROR(s.frontend->SetFeatures(s.acked));
  return accepted;
}

absl::Status VirtioUserBus::ReadConfig(uint32_t offset, absl::Span<uint8_t> out) {
  VRPC_RETURN_IF_ERROR(Check());
  if ((session_->protocol & vhost_user::kProtocolConfig) == 0) {
    return absl::UnimplementedError("the backend does not offer GET_CONFIG");
  }
  VRPC_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes,
                        session_->frontend->GetConfig(offset, static_cast<uint32_t>(out.size())));
  std::memcpy(out.data(), bytes.data(), out.size());  // GetConfig checked the size
  return absl::OkStatus();
}

absl::StatusOr<DmaRegion> VirtioUserBus::AllocateDma(size_t size) {
  VRPC_RETURN_IF_ERROR(Check());
  Session& s = *session_;
  const size_t rounded = (size + kPage - 1) / kPage * kPage;
  if (size == 0 || rounded > options_.dma_bytes - s.allocated) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "virtio-user DMA memory: ", size, " bytes wanted, ",
        options_.dma_bytes - s.allocated, " left of ", options_.dma_bytes));
  }
  DmaRegion region;
  region.host = s.mapping->addr() + s.allocated;
  region.device_addr = kDmaBase + s.allocated;
  region.size = rounded;
  region.keepalive = s.mapping;
  s.allocated += rounded;
  return region;
}

virtqueue::GuestMemory VirtioUserBus::DmaMemory() const {
  return session_ != nullptr ? session_->memory : virtqueue::GuestMemory();
}

absl::Status VirtioUserBus::SendMemTable(Session& s) const {
  vhost_user::MemoryRegionDesc region;
  region.guest_addr = kDmaBase;
  region.size = options_.dma_bytes;
  region.user_addr = reinterpret_cast<uintptr_t>(s.mapping->addr());
  region.mmap_offset = 0;
  const int fd[1] = {s.memfd.get()};
  VRPC_RETURN_IF_ERROR(s.frontend->SetMemTable({&region, 1}, fd));
  s.mem_table_sent = true;
  return absl::OkStatus();
}

absl::Status VirtioUserBus::SetupQueue(uint32_t index, const QueueLayout& layout) {
  VRPC_RETURN_IF_ERROR(Check());
  Session& s = *session_;
  if (index >= options_.num_queues || index < s.kick.size()) {
    return absl::InvalidArgumentError(absl::StrCat("queue ", index, " set up out of order"));
  }
  while (s.kick.size() <= index) {
    VRPC_ASSIGN_OR_RETURN(UniqueFd kick, MakeEventFd());
    VRPC_ASSIGN_OR_RETURN(UniqueFd call, MakeEventFd());
    s.kick.push_back(std::move(kick));
    s.call.push_back(std::move(call));
  }
  if (index >= backend_queues()) return absl::OkStatus();  // kept here, as QEMU does
  if (!s.mem_table_sent) VRPC_RETURN_IF_ERROR(SendMemTable(s));
  auto user = [&](uint64_t addr) -> absl::StatusOr<uint64_t> {
    VRPC_ASSIGN_OR_RETURN(uint8_t* host, s.memory.Translate(addr, 1));
    return reinterpret_cast<uintptr_t>(host);
  };
  vhost_user::VringAddress a;
  a.index = index;
  VRPC_ASSIGN_OR_RETURN(a.desc_user_addr, user(layout.desc_addr));
  VRPC_ASSIGN_OR_RETURN(a.avail_user_addr, user(layout.avail_addr));
  VRPC_ASSIGN_OR_RETURN(a.used_user_addr, user(layout.used_addr));
  vhost_user::Frontend& f = *s.frontend;
  VRPC_RETURN_IF_ERROR(f.SetVringCall(index, s.call[index].get()));
  VRPC_RETURN_IF_ERROR(f.SetVringErr(index, s.err.get()));
  VRPC_RETURN_IF_ERROR(f.SetVringNum(index, layout.size));
  VRPC_RETURN_IF_ERROR(f.SetVringBase(index, 0));
  VRPC_RETURN_IF_ERROR(f.SetVringAddr(a));
  VRPC_RETURN_IF_ERROR(f.SetVringKick(index, s.kick[index].get()));
  s.queues.push_back(index);
  return absl::OkStatus();
}

absl::Status VirtioUserBus::Start() {
  VRPC_RETURN_IF_ERROR(Check());
  Session& s = *session_;
  // Without VHOST_USER_F_PROTOCOL_FEATURES rings are enabled when kicked.
  if ((s.acked & vhost_user::kFeatureProtocolFeatures) == 0) return absl::OkStatus();
  for (uint32_t index : s.queues) {
    VRPC_RETURN_IF_ERROR(s.frontend->SetVringEnable(index, true));
  }
  return absl::OkStatus();
}

void VirtioUserBus::Notify(uint32_t index) {
  if (session_ == nullptr || index >= session_->kick.size()) return;
  const uint64_t one = 1;
  (void)!::write(session_->kick[index].get(), &one, sizeof(one));
}

int VirtioUserBus::InterruptFd(uint32_t index) const {
  if (session_ == nullptr || index >= session_->call.size()) return -1;
  return session_->call[index].get();
}

std::vector<int> VirtioUserBus::control_fds() const {
  if (session_ == nullptr) return {};
  return {session_->frontend->fd(), session_->err.get()};
}

absl::Status VirtioUserBus::HandleControl() {
  VRPC_RETURN_IF_ERROR(Check());
  uint64_t count = 0;
  if (::read(session_->err.get(), &count, sizeof(count)) == sizeof(count)) {
    return absl::InternalError("the vhost-user backend signalled a ring error");
  }
  return session_->frontend->CheckUnsolicited();
}

}  // namespace vsock
}  // namespace vrpc
