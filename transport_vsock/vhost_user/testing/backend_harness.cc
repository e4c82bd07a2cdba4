#include "transport_vsock/vhost_user/testing/backend_harness.h"

#include <fcntl.h>
#include <poll.h>

#include <utility>

#include "core/base/logging.h"

namespace vrpc {
namespace vhost_user {
namespace testing {

BackendHarness::BackendHarness() : BackendHarness(Options()) {}

BackendHarness::BackendHarness(Options options)
    : options_(options), ram_(std::make_unique<FakeGuestRam>(options.ram_size)) {
  for (uint32_t i = 0; i < options_.num_queues; ++i) {
    kick_.push_back(MakeEventFd());
    call_.push_back(MakeEventFd());
    err_.push_back(MakeEventFd());
    spare_.push_back(MakeEventFd());
  }
  hooks_ = options_.device;
  if (hooks_ == nullptr) {
    device_ = std::make_unique<RecordingDevice>(options_.num_queues);
    hooks_ = device_.get();
  }
  backend_ = std::make_unique<Backend>(hooks_, options_.backend);
  UniqueFd backend_end;
  frontend_ = ScriptedFrontend::CreatePair(&backend_end);
  VRPC_CHECK(backend_->Attach(std::move(backend_end)).ok());
}

RecordingDevice& BackendHarness::device() {
  VRPC_CHECK(device_ != nullptr) << "the harness drives a device of the test's";
  return *device_;
}

BackendHarness::~BackendHarness() {
  backend_.reset();
  frontend_.Close();
}

void BackendHarness::Reconnect() {
  backend_->Disconnect();
  frontend_.Close();
  UniqueFd backend_end;
  frontend_ = ScriptedFrontend::CreatePair(&backend_end);
  VRPC_CHECK(backend_->Attach(std::move(backend_end)).ok());
}

absl::Status BackendHarness::Pump() {
  for (;;) {
    if (!backend_->attached()) return absl::OkStatus();
    pollfd pfd = {backend_->socket_fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) return absl::OkStatus();
    if (absl::Status s = backend_->HandleReadable(); !s.ok()) return s;
  }
}

std::optional<Reply> BackendHarness::Call(uint32_t request, uint32_t flags,
                                          const std::vector<uint8_t>& payload) {
  frontend_.Send(request, flags, payload);
  if (!Pump().ok()) return std::nullopt;
  return frontend_.ReadReply(absl::Milliseconds(500));
}

std::optional<uint64_t> BackendHarness::GetU64(uint32_t request) {
  std::optional<Reply> r = Call(request, kVersion, {});
  if (!r.has_value() || r->header.request != request ||
      r->header.flags != kReplyFlags || r->payload.size() != 8) {
    return std::nullopt;
  }
  absl::StatusOr<uint64_t> v = ParseU64(r->payload);
  if (!v.ok()) return std::nullopt;
  return *v;
}

std::vector<MemoryRegionDesc> BackendHarness::QemuRegions() const {
  return {FakeGuestRam::Region(0, 0, 0xa0000),
          FakeGuestRam::Region(0xc0000, 0xc0000, options_.ram_size - 0xc0000)};
}

void BackendHarness::SendMemTable(const std::vector<MemoryRegionDesc>& regions,
                                  uint32_t flags, int fd_count) {
  const size_t n = fd_count < 0 ? regions.size() : static_cast<size_t>(fd_count);
  std::vector<UniqueFd> dups;
  std::vector<int> raw;
  for (size_t i = 0; i < n; ++i) {
    dups.emplace_back(::fcntl(ram_->fd(), F_DUPFD_CLOEXEC, 0));
    raw.push_back(dups.back().get());
  }
  frontend_.Send(kSetMemTable, flags, EncodeMemTable(regions), raw);
}

VringAddress BackendHarness::RingAddress(uint32_t index) {
  const uint64_t base = RingGuestAddr(index);
  VringAddress a;
  a.index = index;
  a.desc_user_addr = FakeGuestRam::UserAddr(base);
  a.avail_user_addr = FakeGuestRam::UserAddr(base + 0x800);
  a.used_user_addr = FakeGuestRam::UserAddr(base + 0x1000);
  return a;
}

bool BackendHarness::QemuInit(uint64_t protocol_features) {
  if (!GetU64(kGetFeatures).has_value()) return false;
  if (!GetU64(kGetProtocolFeatures).has_value()) return false;
  frontend_.SendU64(kSetProtocolFeatures, protocol_features);
  if (!GetU64(kGetQueueNum).has_value()) return false;
  frontend_.SendEmpty(kSetOwner);
  if (!GetU64(kGetFeatures).has_value()) return false;
  for (uint32_t i = 0; i < 2; ++i) {
    frontend_.SendU64(kSetVringCall, i, kVersion, {call_fd(i)});
    frontend_.SendU64(kSetVringErr, i, kVersion, {err_fd(i)});
  }
  if ((protocol_features & kProtocolConfig) != 0) {
    std::optional<Reply> config =
        Call(kGetConfig, kVersion, EncodeConfig(0, 0, std::vector<uint8_t>(8)));
    if (!config.has_value()) return false;
  }
  for (uint32_t i = 0; i < 2; ++i) {
    frontend_.SendU64(kSetVringCall, i, kVersion, {call_fd(i)});
  }
  frontend_.SendU64(kSetFeatures, kQemuAckedFeatures);
  return Pump().ok();
}

void BackendHarness::QemuStartRings(uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    frontend_.SendState(kSetVringNum, i, kQemuRingSize);
    frontend_.SendState(kSetVringBase, i, 0);
    frontend_.Send(kSetVringAddr, kVersion, EncodeVringAddress(RingAddress(i)));
    frontend_.SendU64(kSetVringKick, i, kVersion, {kick_fd(i)});
  }
}

}  // namespace testing
}  // namespace vhost_user
}  // namespace vrpc
