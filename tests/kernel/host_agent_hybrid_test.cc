// The kernel transport's hybrid-vsock client against vrpc's host agent: the
// host_agent binary (a child process) serves the VM's vhost-user socket to
// vrpc's userspace guest driver in this process (virtio-user, on its own
// reactor thread) and exposes the VM's hybrid Unix sockets. The host side
// here is only the kernel transport, on its own UringReactor thread:
//
//   host -> guest  KernelConnector("hvsock:<uds>:P") to a guest EchoServer
//   guest -> host  the agent forwards guest connections to host port P to
//                  <uds>_P, where ListenKernel("unix:<uds>_P") serves them
//
// Payloads are the probe pattern, echoed back and checked on arrival.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "core/transport/address.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/virtio_user/harness.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/driver/vsock_driver.h"
#include "transport_vsock/kernel/kernel_transport.h"

namespace vrpc {
namespace kernel {
namespace {

using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionEventType;
using virtio_user_test::ChildProcess;
using virtio_user_test::DriverThread;
using virtio_user_test::TempDir;
using virtio_user_test::VmPaths;
using vsock::EchoClient;
using vsock::EchoServer;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

std::function<void(absl::Status)> Promise(std::vector<std::future<absl::Status>>& futures) {
  auto p = std::make_shared<std::promise<absl::Status>>();
  futures.push_back(p->get_future());
  return [p](absl::Status s) { p->set_value(std::move(s)); };
}

void ExpectAllOk(std::vector<std::future<absl::Status>>& futures) {
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(120)), std::future_status::ready);
    VRPC_EXPECT_OK(f.get());
  }
}

class HostAgentHybridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VRPC_ASSERT_OK_AND_ASSIGN(agent_, virtio_user_test::StartAgent(dir_.path()));
    VRPC_ASSERT_OK_AND_ASSIGN(driver_, DriverThread::Start(vm_.socket));
    VRPC_ASSERT_OK_AND_ASSIGN(host_, io::EventLoopThread::Start("host"));
  }
  void TearDown() override {
    if (host_ != nullptr) {
      host_->RunSync([&] {
        host_clients_.clear();
        host_server_.reset();
        probe_.reset();
      });
    }
    if (driver_ != nullptr) {
      driver_->Call([&] {
        guest_clients_.clear();
        guest_server_.reset();
      });
    }
    host_.reset();
    driver_.reset();
    agent_.reset();
  }

  // A guest EchoServer on |port| for |count| connections.
  void GuestEchoServer(uint32_t port, int count, std::vector<std::future<absl::Status>>& done) {
    auto on_done = Promise(done);
    driver_->Call([&] {
      auto listener = driver_->driver().Listen(port);
      VRPC_CHECK(listener.ok()) << listener.status();
      guest_server_ = std::make_unique<EchoServer>(*std::move(listener), count, on_done);
    });
  }
  transport::Address Hvsock(uint32_t port) const {
    auto a = transport::ParseAddress(absl::StrCat("hvsock:", vm_.uds, ":", port));
    VRPC_CHECK(a.ok());
    return *a;
  }

  TempDir dir_;
  VmPaths vm_{dir_.path()};
  std::unique_ptr<ChildProcess> agent_;
  std::unique_ptr<DriverThread> driver_;
  std::unique_ptr<io::EventLoopThread> host_;
  // On the host loop.
  std::vector<std::unique_ptr<EchoClient>> host_clients_;
  std::unique_ptr<EchoServer> host_server_;
  std::unique_ptr<Connection> probe_;
  // On the driver's thread.
  std::vector<std::unique_ptr<EchoClient>> guest_clients_;
  std::unique_ptr<EchoServer> guest_server_;
};

TEST_F(HostAgentHybridTest, HostDialsAGuestPortThroughTheAgent) {
  std::vector<std::future<absl::Status>> done;
  GuestEchoServer(6000, 4, done);
  host_->RunSync([&] {
    auto connector = KernelConnector(Hvsock(6000), host_->reactor());
    VRPC_CHECK(connector.ok());
    // One big transfer and three small ones at the same time.
    for (uint64_t bytes : std::vector<uint64_t>{8 * kMiB, 64 * 1024, 1, 300 * 1024}) {
      host_clients_.push_back(std::make_unique<EchoClient>(**connector, bytes, Promise(done)));
    }
  });
  ExpectAllOk(done);
  host_->RunSync([&] {
    EXPECT_EQ(host_clients_[0]->received(), 8 * kMiB);
    EXPECT_EQ(host_clients_[0]->connection()->peer_address(), "hvsock:" + vm_.uds + ":6000");
  });
}

TEST_F(HostAgentHybridTest, NoGuestListenerIsUnavailable) {
  std::promise<absl::Status> closed;
  host_->RunSync([&] {
    auto connector = KernelConnector(Hvsock(6123), host_->reactor());
    VRPC_CHECK(connector.ok());
    auto conn = (*connector)->Connect();
    VRPC_CHECK(conn.ok());
    probe_ = *std::move(conn);
    probe_->SetEventHandler([&closed](const ConnectionEvent& e) {
      EXPECT_NE(e.type, ConnectionEventType::kConnected);
      if (e.type == ConnectionEventType::kClosed) closed.set_value(e.status);
    });
  });
  auto f = closed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_THAT(f.get(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("hybrid")));
}

TEST_F(HostAgentHybridTest, GuestDialsAHostPortServedByAKernelListener) {
  std::vector<std::future<absl::Status>> done;
  auto server_done = Promise(done);
  host_->RunSync([&] {
    auto address = transport::ParseAddress(absl::StrCat("unix:", vm_.uds, "_5000"));
    VRPC_CHECK(address.ok());
    auto listener = ListenKernel(*address, host_->reactor());
    VRPC_CHECK(listener.ok()) << listener.status();
    host_server_ = std::make_unique<EchoServer>(*std::move(listener), 2, server_done);
  });
  driver_->Call([&] {
    auto connector = driver_->driver().ConnectorTo(vsock::kCidHost, 5000);
    VRPC_CHECK(connector.ok());
    for (uint64_t bytes : std::vector<uint64_t>{8 * kMiB, 100 * 1024}) {
      guest_clients_.push_back(std::make_unique<EchoClient>(**connector, bytes, Promise(done)));
    }
  });
  ExpectAllOk(done);
  host_->RunSync([&] { EXPECT_EQ(host_server_->echoed_bytes(), 8 * kMiB + 100 * 1024); });
}

}  // namespace
}  // namespace kernel
}  // namespace vrpc
