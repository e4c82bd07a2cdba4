// End to end: vrpc's vhost-user vsock device (the host agent's VmServer, in
// this process on an io_uring reactor) attached to QEMU 7.2's
// vhost-user-vsock-pci, with the Debian kernel's own virtio-vsock driver in
// a TCG guest running tests/e2e/guest/vsock_device_guest over AF_VSOCK:
//   (a) the guest connects to host port 5000, served on <uds>_5000, and 8 MiB
//       move each way, verified on both sides;
//   (b) the guest listens on port 6000 and a host client reaches it with
//       "CONNECT 6000\n"; 8 MiB each way;
//   (c) a connect to a host port where nothing listens fails fast;
//   (d) QEMU is killed mid-transfer; the agent resets the connection, and a
//       new VM against the same agent is served;
//   (e) the same moves through the in-process Connection API (a host
//       Listener and a Connector), and the host copies 0 received payload
//       bytes.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "core/io/uring_reactor.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/device/vm_server.h"
#include "tests/e2e/guest/stream_util.h"
#include "tests/e2e/harness/host_tools.h"
#include "tests/e2e/harness/qemu_guest.h"

namespace vrpc {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBytes = 8 << 20;

UniqueFd ListenUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  return fd;
}

UniqueFd AcceptWithin(int lfd, int timeout_ms) {
  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return UniqueFd();
  return UniqueFd(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
}

// Sends |bytes| of |send_seed| (then SHUT_WR) while verifying |recv_seed|.
std::string Exchange(int fd, uint64_t bytes, uint64_t send_seed, uint64_t recv_seed) {
  const double start = e2e::NowSeconds();
  std::thread sender([&] {
    e2e::SendPattern(fd, send_seed, bytes);
    ::shutdown(fd, SHUT_WR);
  });
  e2e::ReceiveResult r = e2e::ReceivePattern(fd, recv_seed);
  sender.join();
  if (r.first_mismatch >= 0) return "mismatch at " + std::to_string(r.first_mismatch);
  if (r.received != bytes || !r.eof) {
    return "received " + std::to_string(r.received) + " of " + std::to_string(bytes);
  }
  const double secs = e2e::NowSeconds() - start;
  std::fprintf(stderr, "host side: %llu bytes each way in %.2f s (%.2f MB/s per direction)\n",
               static_cast<unsigned long long>(bytes), secs, bytes / secs / 1e6);
  return "ok";
}

// Drives one in-process Connection on the reactor thread: sends |bytes| of
// stream |send_seed| as credit allows (then shuts down writing), verifies
// stream |recv_seed| until EOF, and fulfils |done| with "ok" or a failure.
class PatternPeer {
 public:
  PatternPeer(std::unique_ptr<transport::Connection> c, uint64_t bytes, uint64_t send_seed,
              uint64_t recv_seed)
      : c_(std::move(c)), bytes_(bytes), send_seed_(send_seed), recv_seed_(recv_seed) {
    c_->SetEventHandler([this](const transport::ConnectionEvent& e) { OnEvent(e); });
    if (c_->state() == transport::ConnectionState::kOpen) Pump();
  }
  std::future<std::string> result() { return done_.get_future(); }
  transport::ConnectionStats stats() const { return c_->stats(); }

 private:
  void OnEvent(const transport::ConnectionEvent& e) {
    if (e.type == transport::ConnectionEventType::kClosed && !finished_) {
      return Finish(e.status.ok() ? "closed before the exchange completed"
                                  : "closed: " + std::string(e.status.message()));
    }
    Pump();
  }
  void Pump() {
    if (finished_ || c_->state() != transport::ConnectionState::kOpen) return;
    while (sent_ < bytes_) {
      if (pending_.empty()) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(256 << 10, bytes_ - sent_ - queued_));
        if (n == 0) break;
        uint8_t* data = nullptr;
        Slice chunk = Slice::Allocate(n, &data);
        e2e::FillPattern(send_seed_, sent_ + queued_, data, n);
        pending_.Append(std::move(chunk));
        queued_ += n;
      }
      absl::StatusOr<size_t> n = c_->Write(pending_);
      if (!n.ok()) return Finish("write: " + std::string(n.status().message()));
      if (*n == 0) break;  // credit-blocked: kWritable resumes
      sent_ += *n;
      queued_ -= *n;
    }
    if (sent_ == bytes_ && !shut_) {
      shut_ = true;
      if (!c_->ShutdownWrite().ok()) return Finish("shutdown failed");
    }
    while (true) {
      absl::StatusOr<SliceChain> got = c_->Read(SIZE_MAX);
      if (!got.ok()) return Finish("read: " + std::string(got.status().message()));
      if (got->empty()) break;
      for (const Slice& s : got->slices()) {
        if (e2e::VerifyPattern(recv_seed_, received_, s.data(), s.size()) >= 0) {
          return Finish("mismatch near offset " + std::to_string(received_));
        }
        received_ += s.size();
      }
    }
    if (c_->AtEof() && shut_) {
      Finish(received_ == bytes_ ? "ok"
                                 : "received " + std::to_string(received_) + " bytes");
    }
  }
  void Finish(std::string why) {
    if (finished_) return;
    finished_ = true;
    done_.set_value(std::move(why));
  }

  std::unique_ptr<transport::Connection> c_;
  const uint64_t bytes_, send_seed_, recv_seed_;
  SliceChain pending_;
  uint64_t sent_ = 0, queued_ = 0, received_ = 0;
  bool shut_ = false, finished_ = false;
  std::promise<std::string> done_;
};

class VsockDeviceE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spec_.guest_cid = 3;
    spec_.socket = dir_ + "/vm.vsock";
    spec_.uds_path = dir_ + "/vm.sock";
    spec_.ring_mode = ring_mode_;
    auto reactor = io::UringReactor::Create();
    ASSERT_THAT(reactor, IsOk());
    reactor_ = *std::move(reactor);
    auto server = vsock::VmServer::Create(spec_, *reactor_);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    loop_ = std::thread([this] { EXPECT_THAT(reactor_->Run(), IsOk()); });
  }

  void TearDown() override {
    if (loop_.joinable()) {
      // In-process endpoints die on the reactor thread, before the device.
      std::promise<void> cleared;
      reactor_->Post([&] {
        peers_.clear();
        listener_.reset();
        cleared.set_value();
      });
      cleared.get_future().wait();
      reactor_->Stop();
      loop_.join();
    }
    server_.reset();
    (void)!::system(("rm -rf " + dir_).c_str());
  }

  // Runs |fn| on the reactor thread and returns its result.
  template <typename Fn>
  auto OnLoop(Fn fn) {
    std::promise<decltype(fn())> done;
    reactor_->Post([&] { done.set_value(fn()); });
    return done.get_future().get();
  }

  absl::StatusOr<std::unique_ptr<e2e::QemuGuest>> Boot(std::vector<std::string> steps,
                                                     std::string name) {
    e2e::GuestOptions options;
    options.name = std::move(name);
    options.extra_qemu_args = {"-chardev", "socket,id=vu,path=" + spec_.socket, "-device",
                               "vhost-user-vsock-pci,chardev=vu"};
    auto binary = e2e::Runfile("tests/e2e/guest/vsock_device_guest");
    if (!binary.ok()) return binary.status();
    if (absl::Status s = options.payload.SetHostBinary(*binary, std::move(steps)); !s.ok()) {
      return s;
    }
    return e2e::QemuGuest::Start(std::move(options));
  }

  std::string ring_mode_ = "interrupt";
  std::string dir_;
  vsock::VmSpec spec_;
  std::unique_ptr<io::UringReactor> reactor_;
  std::unique_ptr<vsock::VmServer> server_;
  std::thread loop_;
  // Reactor-thread state of the in-process test.
  std::unique_ptr<transport::Listener> listener_;
  std::vector<std::unique_ptr<PatternPeer>> peers_;
};

// The same device in each ring notification mode.
class VsockDeviceModeTest : public VsockDeviceE2eTest,
                            public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    ring_mode_ = GetParam();
    VsockDeviceE2eTest::SetUp();
  }
};

TEST_P(VsockDeviceModeTest, LinuxGuestTalksToTheHostBothWays) {
  UniqueFd server = ListenUnix(spec_.uds_path + "_5000");
  std::future<std::string> guest_to_host = std::async(std::launch::async, [&] {
    UniqueFd conn = AcceptWithin(server.get(), 120000);
    if (!conn.valid()) return std::string("no connection");
    return Exchange(conn.get(), kBytes, 102, 101);
  });
  VRPC_ASSERT_OK_AND_ASSIGN(
      auto guest, Boot({"client:5000:" + std::to_string(kBytes),
                        "server:6000:" + std::to_string(kBytes), "refused:5001"},
                       "device-e2e"));
  // (b) once the guest listens, reach it through the hybrid socket.
  VRPC_ASSERT_OK(guest->WaitForConsole("vrpc-listening 6000", absl::Seconds(180)));
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, spec_.uds_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(e2e::WriteFully(client.get(), "CONNECT 6000\n", 13), 0);
  char ok[8] = {};
  ASSERT_EQ(::recv(client.get(), ok, 8, MSG_WAITALL), 8);
  EXPECT_EQ(std::string(ok, 8), "OK 6000\n");
  const std::string exchanged = Exchange(client.get(), kBytes, 201, 202);
  EXPECT_EQ(exchanged, "ok");
  if (exchanged != "ok") {
    const auto s = OnLoop([&] { return server_->device().stats(); });
    std::fprintf(stderr,
                 "device: tx_packets=%llu rx_packets=%llu polls=%llu copied=%llu zero_copy=%llu "
                 "broken=%d\n",
                 static_cast<unsigned long long>(s.tx_packets),
                 static_cast<unsigned long long>(s.rx_packets),
                 static_cast<unsigned long long>(s.polls),
                 static_cast<unsigned long long>(s.copied_bytes),
                 static_cast<unsigned long long>(s.zero_copy_bytes),
                 OnLoop([&] { return server_->device().broken(); }) ? 1 : 0);
    std::fprintf(stderr, "%s\n", OnLoop([&] { return server_->device().DebugString(); }).c_str());
  }

  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult result, guest->Wait());
  EXPECT_EQ(result.exit_code, 0) << result.payload_output;
  EXPECT_THAT(result.payload_output, HasSubstr("PASS client:5000"));
  EXPECT_THAT(result.payload_output, HasSubstr("PASS server:6000"));
  EXPECT_THAT(result.payload_output, HasSubstr("PASS refused:5001"));
  EXPECT_EQ(guest_to_host.get(), "ok");
  const auto stats = OnLoop([&] { return server_->device().stats(); });
  EXPECT_GT(stats.zero_copy_bytes, kBytes);  // guest payload handed over in place
  if (ring_mode_ == "interrupt") {
    EXPECT_EQ(stats.polls, 0u);
  } else {
    EXPECT_GT(stats.polls, 0u);
  }
  std::fprintf(stderr, "ring mode %s: %llu polls, %llu payload bytes copied\n", ring_mode_.c_str(),
               static_cast<unsigned long long>(stats.polls),
               static_cast<unsigned long long>(stats.copied_bytes));
  EXPECT_FALSE(OnLoop([&] { return server_->device().broken(); }));
  std::fprintf(stderr, "guest reported:\n%s\n", result.payload_output.c_str());
}

INSTANTIATE_TEST_SUITE_P(RingModes, VsockDeviceModeTest,
                         ::testing::Values("interrupt", "poll", "adaptive"));

TEST_F(VsockDeviceE2eTest, QemuKilledMidTransferThenANewVmIsServed) {
  UniqueFd server = ListenUnix(spec_.uds_path + "_5000");
  std::atomic<uint64_t> received{0};
  std::future<bool> first = std::async(std::launch::async, [&] {
    UniqueFd conn = AcceptWithin(server.get(), 120000);
    if (!conn.valid()) return false;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) return true;  // EOF or reset once the VM is gone
      received += static_cast<uint64_t>(n);
    }
  });
  VRPC_ASSERT_OK_AND_ASSIGN(auto guest, Boot({"flood:5000"}, "device-kill"));
  VRPC_ASSERT_OK(guest->WaitForConsole("vrpc-flooding 5000", absl::Seconds(180)));
  for (int i = 0; i < 600 && received < (1u << 20); ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_GE(received.load(), 1u << 20);
  guest->Kill();
  ASSERT_EQ(first.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the forwarded socket was not closed after the VM died";
  EXPECT_TRUE(first.get());
  for (int i = 0; i < 100 && OnLoop([&] { return server_->frontend_attached(); }); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_FALSE(OnLoop([&] { return server_->frontend_attached(); }));

  // A new VM against the same agent.
  std::future<std::string> second = std::async(std::launch::async, [&] {
    UniqueFd conn = AcceptWithin(server.get(), 120000);
    if (!conn.valid()) return std::string("no connection");
    return Exchange(conn.get(), 1 << 20, 102, 101);
  });
  VRPC_ASSERT_OK_AND_ASSIGN(auto again, Boot({"client:5000:1048576"}, "device-restart"));
  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult result, again->Wait());
  EXPECT_EQ(result.exit_code, 0) << result.payload_output;
  EXPECT_EQ(second.get(), "ok");
  EXPECT_EQ(OnLoop([&] { return server_->sessions(); }), 2);
}

TEST_F(VsockDeviceE2eTest, InProcessConnectionApiBothWaysWithZeroCopy) {
  // (e) host port 5002 served in process; the guest's port 6001 reached
  // through a Connector.
  std::promise<std::future<std::string>> accepted;
  OnLoop([&] {
    auto listener = server_->device().host().Listen(5002);
    EXPECT_THAT(listener, IsOk());
    if (!listener.ok()) return 0;
    listener_ = *std::move(listener);
    listener_->SetAcceptHandler([&](std::unique_ptr<transport::Connection> c) {
      peers_.push_back(std::make_unique<PatternPeer>(std::move(c), kBytes, 102, 101));
      accepted.set_value(peers_.back()->result());
    });
    return 0;
  });
  VRPC_ASSERT_OK_AND_ASSIGN(
      auto guest, Boot({"client:5002:" + std::to_string(kBytes),
                        "server:6001:" + std::to_string(kBytes)},
                       "device-inproc"));
  std::future<std::future<std::string>> accepted_future = accepted.get_future();
  ASSERT_EQ(accepted_future.wait_for(std::chrono::seconds(180)), std::future_status::ready);
  std::future<std::string> inbound = accepted_future.get();
  const double start = e2e::NowSeconds();
  ASSERT_EQ(inbound.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  EXPECT_EQ(inbound.get(), "ok");
  const double secs = e2e::NowSeconds() - start;
  const transport::ConnectionStats in_stats = OnLoop([&] { return peers_[0]->stats(); });
  EXPECT_EQ(in_stats.bytes_read, kBytes);
  EXPECT_EQ(in_stats.rx_bytes_copied, 0u) << "received payloads must be views of guest memory";
  std::fprintf(stderr, "in-process: %llu bytes each way in %.2f s (%.2f MB/s per direction), "
               "%llu payload bytes copied\n",
               static_cast<unsigned long long>(kBytes), secs, kBytes / secs / 1e6,
               static_cast<unsigned long long>(in_stats.rx_bytes_copied));

  VRPC_ASSERT_OK(guest->WaitForConsole("vrpc-listening 6001", absl::Seconds(180)));
  std::future<std::string> outbound = OnLoop([&] {
    auto c = server_->device().host().ConnectorTo(6001)->Connect();
    EXPECT_THAT(c, IsOk());
    peers_.push_back(std::make_unique<PatternPeer>(*std::move(c), kBytes, 201, 202));
    return peers_.back()->result();
  });
  ASSERT_EQ(outbound.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  EXPECT_EQ(outbound.get(), "ok");
  EXPECT_EQ(OnLoop([&] { return peers_[1]->stats().rx_bytes_copied; }), 0u);

  VRPC_ASSERT_OK_AND_ASSIGN(e2e::GuestResult result, guest->Wait());
  EXPECT_EQ(result.exit_code, 0) << result.payload_output;
  EXPECT_THAT(result.payload_output, HasSubstr("PASS client:5002"));
  EXPECT_THAT(result.payload_output, HasSubstr("PASS server:6001"));
  std::fprintf(stderr, "guest reported:\n%s\n", result.payload_output.c_str());
}

}  // namespace
}  // namespace vrpc
